#ifndef YUBIN_ROUTE_H
#define YUBIN_ROUTE_H
#endif
