#ifndef YUBIN_ALIASES_H
#define YUBIN_ALIASES_H
#endif
