/* route: placeholder until the module lands. */
#include "config.h"
#include "route.h"
