/*
 * bench/mime-cost.d/hwm.h: prints the process's peak RSS (the VmHWM line of
 * /proc/self/status), shared by the two programs bench/mime-cost compares.
 */
#include <stdio.h>
#include <string.h>

static void hwm(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            fputs(line, stdout);
    if (f)
        fclose(f);
}
