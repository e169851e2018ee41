/*
 * test-trace: lib/trace's header lines against golden text at a fixed time in fixed time
 * zones, and the inputs it must refuse (control characters, lines of 998 octets or more).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "trace.h"

static void check_received(void)
{
    char buf[2048];
    struct trace_received t = {"client.test",      "[192.0.2.1]",       "mx.example.test", "ESMTP",
                               "0123456789abcdef", "demo@example.test", 1700000000,        NULL};
    CHECK(trace_received(buf, sizeof buf, &t) > 0, "Received with one recipient");
    CHECK_STR(buf,
              "Received: from client.test ([192.0.2.1])\n"
              "\tby mx.example.test (yubin) with ESMTP id 0123456789abcdef\n"
              "\tfor <demo@example.test>; Tue, 14 Nov 2023 22:13:20 +0000\n",
              "its text");
    t.rcpt = NULL;
    t.protocol = "SMTP";
    t.client = "local";
    CHECK(trace_received(buf, sizeof buf, &t) > 0, "Received without a recipient");
    CHECK_STR(buf,
              "Received: from client.test (local)\n"
              "\tby mx.example.test (yubin) with SMTP id 0123456789abcdef;\n"
              "\tTue, 14 Nov 2023 22:13:20 +0000\n",
              "its text");
    t.protocol = "ESMTPS";
    t.tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
    CHECK(trace_received(buf, sizeof buf, &t) > 0, "Received over TLS");
    CHECK_STR(buf,
              "Received: from client.test (local)\n"
              "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
              "\tby mx.example.test (yubin) with ESMTPS id 0123456789abcdef;\n"
              "\tTue, 14 Nov 2023 22:13:20 +0000\n",
              "the protocol and cipher as Postfix names them");
    t.tls = NULL;
    t.helo = "evil\r\nX-Injected: yes";
    CHECK(trace_received(buf, sizeof buf, &t) == -1, "a CR LF in HELO is refused");
    t.helo = "tab\there";
    CHECK(trace_received(buf, sizeof buf, &t) == -1, "a control character is refused");
    char long_helo[1001];
    memset(long_helo, 'h', 1000);
    long_helo[1000] = '\0';
    t.helo = long_helo;
    CHECK(trace_received(buf, sizeof buf, &t) == -1, "a line of 998 octets or more is refused");
    long_helo[255] = '\0';
    CHECK(trace_received(buf, sizeof buf, &t) > 0, "a 255-octet HELO fits");
    CHECK(trace_received(buf, 100, &t) == -1, "a small buffer is an error, not a cut");
}

static void check_others(void)
{
    char buf[512];
    CHECK(trace_return_path(buf, sizeof buf, "") > 0, "null Return-Path");
    CHECK_STR(buf, "Return-Path: <>\n", "its text");
    CHECK(trace_return_path(buf, sizeof buf, "a@b.test") > 0, "Return-Path");
    CHECK_STR(buf, "Return-Path: <a@b.test>\n", "its text");
    CHECK(trace_return_path(buf, sizeof buf, "a\n@b") == -1, "an LF in a sender is refused");
    CHECK(trace_date(buf, sizeof buf, 0) > 0, "the epoch");
    CHECK_STR(buf, "Thu, 01 Jan 1970 00:00:00 +0000", "the epoch in UTC");
    setenv("TZ", "JST-9", 1);
    tzset();
    CHECK(trace_date(buf, sizeof buf, 1700000000) > 0, "a date east of UTC");
    CHECK_STR(buf, "Wed, 15 Nov 2023 07:13:20 +0900", "its text");
    setenv("TZ", "EST5", 1);
    tzset();
    CHECK(trace_date(buf, sizeof buf, 1700000000) > 0, "a date west of UTC");
    CHECK_STR(buf, "Tue, 14 Nov 2023 17:13:20 -0500", "its text");
    CHECK(trace_message_id(buf, sizeof buf, "mx.example.test") > 0, "a Message-ID");
    CHECK(buf[0] == '<' && strstr(buf, "@mx.example.test>") != NULL, "its form: %s", buf);
    char other[512];
    trace_message_id(other, sizeof other, "mx.example.test");
    CHECK(strcmp(buf, other) != 0, "two Message-IDs differ");
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    check_received();
    check_others();
    return tap_done();
}
