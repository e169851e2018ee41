/* trace: placeholder until the module lands. */
#include "config.h"
#include "trace.h"
