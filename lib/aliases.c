/* aliases: placeholder until the module lands. */
#include "config.h"
#include "aliases.h"
