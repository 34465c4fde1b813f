/* Placeholder until this subcommand is built; it says so instead of pretending. */
#include <stdio.h>

#include "../cli/commands.h"

int cmd_analyze(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "rtvio analyze: not available in this build yet\n");
	return 2;
}
