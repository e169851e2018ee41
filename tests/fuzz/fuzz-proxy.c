/*
 * tests/fuzz/fuzz-proxy.c: lib/proxy's PROXY protocol v2 parser on any bytes, as a load
 * balancer (or anybody who reaches a port behind one) might send them before SMTP starts.
 * Checks: a parsed header is no longer than the input or PROXY_MAX_LEN and names an IPv4 or
 * IPv6 client unless it is LOCAL; "need more" asks for more than was given and never more
 * than PROXY_MAX_LEN; a refusal says why; whatever parses or needs more looks like a header.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "proxy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_info pi;
    size_t need = 0;
    const char *why = NULL;
    int rc = proxy_parse(data, size, &pi, &need, &why);
    if (rc == PROXY_OK) {
        if (pi.length > size || pi.length > PROXY_MAX_LEN || pi.length < PROXY_FIXED_LEN)
            fuzz_fail("parsed length out of bounds", data, size);
        if (!pi.local && pi.src.ss_family != AF_INET && pi.src.ss_family != AF_INET6)
            fuzz_fail("a PROXY header without an IP client", data, size);
    } else if (rc == PROXY_NEED) {
        if (need <= size || need > PROXY_MAX_LEN)
            fuzz_fail("need is not more than given, or over the bound", data, size);
    } else if (rc != PROXY_BAD || why == NULL || why[0] == '\0') {
        fuzz_fail("a refusal without a reason", data, size);
    }
    if (rc != PROXY_BAD && size >= 6 && !proxy_looks_like((const char *)data, size))
        fuzz_fail("taken, but proxy_looks_like says no", data, size);
    return 0;
}
