/*
 * test-esmtp: lib/esmtp, the SMTP command arguments smtp-in reads: HELO names, the FROM:/TO:
 * keyword, MAIL parameters with the replies that refuse them.
 */
#include "config.h"

#include "esmtp.h"
#include "tap.h"
#include "util.h"

static const char *params(const char *text, int ehlo, int auth, struct esmtp_params *p)
{
    static char buf[600];
    str_copy(buf, sizeof buf, text);
    return esmtp_mail_params(buf, ehlo, auth, p);
}

int main(void)
{
    char name[300];
    struct esmtp_params p;
    CHECK(esmtp_helo_ok("client.test") && esmtp_helo_ok("[192.0.2.1]"), "names and literals");
    CHECK(!esmtp_helo_ok(NULL) && !esmtp_helo_ok("") && !esmtp_helo_ok("two words") &&
              !esmtp_helo_ok("caf\xc3\xa9") && !esmtp_helo_ok("tab\there"),
          "empty, spaces, 8-bit and control octets refused");
    memset(name, 'a', 255);
    name[255] = '\0';
    CHECK(esmtp_helo_ok(name), "255 octets is the most");
    name[255] = 'a';
    name[256] = '\0';
    CHECK(!esmtp_helo_ok(name), "256 octets refused");

    CHECK_STR(esmtp_after_keyword("from:<a@b>", "FROM:"), "<a@b>", "keyword in any case");
    CHECK_STR(esmtp_after_keyword("TO:   <a@b>", "TO:"), "<a@b>", "spaces after the colon");
    CHECK(esmtp_after_keyword("TO <a@b>", "TO:") == NULL &&
              esmtp_after_keyword(NULL, "TO:") == NULL,
          "no keyword: NULL");

    CHECK(params("", 0, 0, &p) == NULL && !p.have_size, "no parameters, even after HELO");
    CHECK(params(" SIZE=1000 BODY=8BITMIME", 1, 0, &p) == NULL && p.have_size && p.size == 1000 &&
              p.have_body,
          "SIZE and BODY");
    CHECK(params(" size=7 body=7bit", 1, 0, &p) == NULL && p.size == 7, "any case");
    CHECK_STR(params(" SIZE=1", 0, 0, &p), "555 5.5.4 parameters need EHLO", "HELO sessions");
    CHECK_STR(params(" SIZE=x", 1, 0, &p), "501 5.5.4 bad SIZE parameter", "bad SIZE");
    CHECK_STR(params(" SIZE=99999999999999999999", 1, 0, &p), "501 5.5.4 bad SIZE parameter",
              "SIZE overflow");
    CHECK_STR(params(" BODY=BINARYMIME", 1, 0, &p), "501 5.5.4 BODY must be 7BIT or 8BITMIME",
              "BINARYMIME");
    CHECK_STR(params(" SIZE=1 SIZE=2", 1, 0, &p), "501 5.5.4 parameter given twice", "twice");
    CHECK_STR(params(" AUTH=<>", 1, 0, &p), "555 5.5.4 unsupported parameter",
              "AUTH= where AUTH is not offered");
    CHECK(params(" AUTH=<> SIZE=5", 1, 1, &p) == NULL && p.size == 5,
          "AUTH= accepted and ignored where it is offered");
    CHECK_STR(params("SIZE=1", 1, 0, &p), "501 5.5.4 syntax: MAIL FROM:<address> [parameters]",
              "no space after the path");
    CHECK_STR(params(" SMTPUTF8", 1, 0, &p), "555 5.5.4 unsupported parameter", "unknown");
    return tap_done();
}
