/* placeholder */
#include "config.h"
#include "maildir.h"
