/* analysis.h must compile on its own, freestanding (it promises a library with no
 * I/O), and survive being included twice. */
#include "analysis.h"
#include "analysis.h"

typedef int analysis_hdrcheck_nonempty;
