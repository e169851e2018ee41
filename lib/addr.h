#ifndef YUBIN_ADDR_H
#define YUBIN_ADDR_H
#endif
