/* model.h must compile on its own, freestanding (plain data and constants), and
 * survive being included twice. */
#include "model.h"
#include "model.h"

typedef int model_hdrcheck_nonempty;
