/*
 * lib/mime: the bounded MIME structure parser for IMAP FETCH (RFC 3501 §6.4.5, §7.4.2; RFC
 * 2045-2049; RFC 2231 parameters). It reads a stored message (LF line ends, as in Maildir)
 * once, in chunks of MIME_CHUNK octets, and keeps a compact part tree: for each part where its
 * header and body are (in the file's octets and in CRLF octets, as IMAP counts them), its line
 * count and the raw values of the MIME (and, for messages, envelope) header fields. From the
 * tree it renders BODYSTRUCTURE, BODY and ENVELOPE as IMAP text and resolves section
 * specifiers (1.2, 1.2.HEADER, .MIME, .TEXT, HEADER.FIELDS) to spans of the file.
 *
 * It never holds a message whole in memory: its memory is bounded by the constants below,
 * whatever the message's size, and every bound is checked before anything is allocated.
 * Beyond a bound the result is degraded but still valid (see mime_tree.degraded); it never
 * crashes, loops or writes outside its buffers on any input. It does not decode RFC 2047
 * words (IMAP returns raw header values) nor transfer encodings.
 *
 * No caller yet: imap4-in (issue 10) is to be written on this API in a later session.
 */
#ifndef YUBIN_MIME_H
#define YUBIN_MIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MIME_MAX_DEPTH 32       /* open parts one inside another (root = 1) */
#define MIME_MAX_PARTS 1000     /* parts in one tree, the root included */
#define MIME_MAX_FIELD 8192     /* octets kept of one (unfolded) header field or line */
#define MIME_MAX_PARAMS 64      /* parameters (RFC 2231 segments) read from one field */
#define MIME_MAX_BOUNDARY 70    /* RFC 2046 §5.1.1 */
#define MIME_MAX_STRINGS 262144 /* octets of field values kept for one tree */
#define MIME_MAX_ADDRESSES 1000 /* addresses rendered from one address field */
#define MIME_CHUNK 16384        /* octets read at once */

/* What was cut short (mime_tree.degraded). The tree and its renderings stay valid: a
 * multipart whose parts were not read renders as one empty text/plain part, a message/rfc822
 * whose message was not read as an empty envelope and body, a cut field as its kept prefix. */
#define MIME_DEG_DEPTH 0x01    /* nesting beyond MIME_MAX_DEPTH: the rest is one leaf body */
#define MIME_DEG_PARTS 0x02    /* more than MIME_MAX_PARTS: later parts are in their parent */
#define MIME_DEG_FIELD 0x04    /* a header line or field over MIME_MAX_FIELD: prefix kept */
#define MIME_DEG_STRINGS 0x08  /* MIME_MAX_STRINGS reached: later fields are absent */
#define MIME_DEG_BOUNDARY 0x10 /* a multipart without a usable boundary (missing, > 70) */

/* A span of the stored file: off/len in its octets, crlf_off/crlf_len with every LF counted
 * as CRLF (what IMAP's sizes and partial offsets mean; lib/maildir's W= counts the same). */
struct mime_span {
    uint64_t off, len;
    uint64_t crlf_off, crlf_len;
};

enum mime_field {
    MIME_F_CONTENT_TYPE,
    MIME_F_ENCODING, /* Content-Transfer-Encoding */
    MIME_F_ID,
    MIME_F_DESCRIPTION,
    MIME_F_DISPOSITION,
    MIME_F_LANGUAGE,
    MIME_F_LOCATION,
    MIME_F_MD5,
    /* only kept for messages (the root and the message of a message/rfc822 part) */
    MIME_F_DATE,
    MIME_F_SUBJECT,
    MIME_F_FROM,
    MIME_F_SENDER,
    MIME_F_REPLY_TO,
    MIME_F_TO,
    MIME_F_CC,
    MIME_F_BCC,
    MIME_F_IN_REPLY_TO,
    MIME_F_MESSAGE_ID,
    MIME_F_COUNT
};

enum mime_kind { MIME_LEAF, MIME_MULTIPART, MIME_MESSAGE };

struct mime_part {
    struct mime_span header;      /* the header section, its blank line included */
    struct mime_span body;        /* the body (a part's ends before the CRLF of its boundary) */
    uint64_t lines;               /* text lines of the body (BODYSTRUCTURE "lines") */
    uint32_t field[MIME_F_COUNT]; /* 1 + offset of the unfolded value in strings; 0: absent */
    uint32_t type, subtype;       /* 1 + offset in strings; 0: the default (text/plain) */
    int parent, child, next, last_child; /* indices in parts; -1: none */
    unsigned short depth;                /* root 0 */
    unsigned char kind;                  /* enum mime_kind, from the content type */
    unsigned char is_message;            /* the root or the message of a message/rfc822 */
    uint64_t start_line;                 /* internal: lines before the body */
};

struct mime_tree {
    struct mime_part *parts; /* parts[0] is the message itself */
    size_t n, cap;
    char *strings;
    size_t s_len, s_cap;
    unsigned degraded; /* MIME_DEG_* */
};

/* Reads up to len octets; returns the count, 0 at the end, -1 with errno on error. */
typedef ssize_t (*mime_reader)(void *arg, void *buf, size_t len);
/* Takes len octets of output; returns 0, or -1 to stop the rendering (it returns -1). */
typedef int (*mime_writer)(void *arg, const void *data, size_t len);

/* Parses a whole message from rd. 0, or -1 with errno (a read error, ENOMEM); on -1 the tree
 * is freed. mime_parse_fd reads fd from offset 0 with pread. */
int mime_parse(struct mime_tree *t, mime_reader rd, void *arg);
int mime_parse_fd(struct mime_tree *t, int fd);
void mime_free(struct mime_tree *t);

/* The unfolded raw value of a field of part i (leading and trailing white space removed,
 * CR and NUL dropped), or NULL when absent. */
const char *mime_field_value(const struct mime_tree *t, int i, enum mime_field f);

/* BODYSTRUCTURE (extended != 0) or BODY of part i (0 for the whole message), as IMAP text.
 * 0, or -1 when the writer failed. */
int mime_bodystructure(const struct mime_tree *t, int i, int extended, mime_writer w, void *arg);
/* ENVELOPE of the message at part i (0, or the message of a message/rfc822 part). */
int mime_envelope(const struct mime_tree *t, int i, mime_writer w, void *arg);

/* A section specifier resolved (RFC 3501 §6.4.5 BODY[section]). */
enum mime_section_kind {
    MIME_SECT_ALL,               /* "" or a part number: the part's body (or whole message) */
    MIME_SECT_HEADER,            /* HEADER */
    MIME_SECT_HEADER_FIELDS,     /* HEADER.FIELDS (list): filter span with mime_header_fields */
    MIME_SECT_HEADER_FIELDS_NOT, /* HEADER.FIELDS.NOT (list) */
    MIME_SECT_TEXT,              /* TEXT */
    MIME_SECT_MIME               /* MIME: the part's own header */
};
struct mime_section {
    int part; /* the part the span belongs to */
    enum mime_section_kind kind;
    struct mime_span span;
    const char *rest; /* after HEADER.FIELDS[.NOT]: the field list as the client sent it */
};

/* Resolves spec (len octets, e.g. "1.2.HEADER.FIELDS (From To)", "", "TEXT", "2.MIME",
 * case-insensitive keywords) to a span. 0, or -1 (EINVAL: bad syntax; ENOENT: no such part,
 * or HEADER/TEXT of a part that is not a message, or MIME without a part number). */
int mime_section(const struct mime_tree *t, const char *spec, size_t len, struct mime_section *s);

/* Writes, with CRLF line ends, the fields of the header span (read from fd with pread) whose
 * names are (not != 0: are not) in the space-separated list names[0..names_len), then the
 * blank line: the text of BODY[HEADER.FIELDS (...)]. 0, or -1 (read error or writer). */
int mime_header_fields(int fd, const struct mime_span *header, const char *names, size_t names_len,
                       int not, mime_writer w, void *arg);

/* A bounded output buffer for the renderings: mime_buf_write fails (and sets overflow) when
 * cap octets would be exceeded; p stays NUL-terminated. */
struct mime_buf {
    char *p;
    size_t len, cap; /* cap includes the NUL */
    int overflow;
};
int mime_buf_write(void *buf, const void *data, size_t len);

#endif
