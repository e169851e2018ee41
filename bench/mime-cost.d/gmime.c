/*
 * bench/mime-cost.d/gmime.c: one message parsed with GMime 3 (every part walked: its content
 * type, parameters, disposition and the envelope headers read), then the process's peak RSS
 * printed, to compare with yubin.c. Built by bench/mime-cost; never installed.
 */
#include <fcntl.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hwm.h"

static size_t parts, bytes;

static void visit(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    (void)parent;
    (void)data;
    GMimeContentType *ct = g_mime_object_get_content_type(part);
    char *s = g_mime_content_type_get_mime_type(ct);
    bytes += strlen(s);
    g_free(s);
    GMimeParamList *pl = g_mime_content_type_get_parameters(ct);
    for (int i = 0; pl && i < g_mime_param_list_length(pl); i++)
        bytes += strlen(g_mime_param_get_value(g_mime_param_list_get_parameter_at(pl, i)));
    const char *d = g_mime_object_get_disposition(part);
    bytes += d ? strlen(d) : 0;
    parts++;
}

int main(int argc, char **argv)
{
    int fd = argc > 1 ? open(argv[1], O_RDONLY) : -1;
    if (fd < 0)
        return 1;
    g_mime_init();
    GMimeStream *st = g_mime_stream_fs_new(fd);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
    if (m == NULL)
        return 1;
    const char *h[] = {"Date", "Subject", "From", "Sender",      "Reply-To",
                       "To",   "Cc",      "Bcc",  "In-Reply-To", "Message-ID"};
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        GMimeHeader *hd = g_mime_header_list_get_header(hl, h[i]);
        const char *raw = hd ? g_mime_header_get_raw_value(hd) : NULL;
        bytes += raw ? strlen(raw) : 0;
    }
    InternetAddressList *to = g_mime_message_get_to(m);
    bytes += to ? (size_t)internet_address_list_length(to) : 0;
    parts++;
    g_mime_message_foreach(m, visit, NULL);
    printf("parts %zu output %zu\n", parts, bytes);
    g_object_unref(m);
    g_object_unref(p);
    g_object_unref(st);
    g_mime_shutdown();
    hwm();
    return 0;
}
