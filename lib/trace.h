#ifndef YUBIN_TRACE_H
#define YUBIN_TRACE_H
#endif
