/* addr: placeholder until the module lands. */
#include "config.h"
#include "addr.h"
