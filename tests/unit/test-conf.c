/*
 * test-conf: yubin.conf parsing. Good files give the right struct; every bad line is refused
 * with the file name and line number. Runs with tests/unit/ as the working directory.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static char dir[] = "/tmp/yubin-test-conf-XXXXXX";

static const char *write_conf(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
        abort();
    return path;
}

static int loads(const char *text, struct yubin_conf *c, char *err, size_t errlen)
{
    return conf_load(c, write_conf("yubin.conf", text), err, errlen);
}

static void test_good_file(void)
{
    struct yubin_conf c;
    char err[512] = "";
    int rc = loads("# a comment\n"
                   "hostname Mx.Example.TEST\n"
                   "local_domains example.test, Other.Test  third.test\n"
                   "state_dir state   # relative to the file\n"
                   "users_file /etc/yubin/users\n"
                   "user mailer\n"
                   "relay_networks 10.1.0.0/16 ::1 192.0.2.7\n"
                   "max_message_size 10M\n"
                   "max_recipients 150\n"
                   "command_timeout 60\n"
                   "auth_without_tls yes\n"
                   "\n",
                   &c, err, sizeof err);
    CHECK(rc == 0, "a good file loads (%s)", err);
    CHECK_STR(c.hostname, "mx.example.test", "hostname is lower-cased");
    CHECK(c.n_local_domains == 3, "three local domains");
    CHECK(conf_is_local_domain(&c, "OTHER.test"), "local domains match in any case");
    CHECK(!conf_is_local_domain(&c, "example.tes"), "no prefix match");
    char want[600];
    snprintf(want, sizeof want, "%s/state", dir);
    CHECK_STR(c.state_dir, want, "a relative path is relative to the config file");
    CHECK_STR(c.users_file, "/etc/yubin/users", "an absolute path stays");
    CHECK_STR(c.user, "mailer", "user");
    CHECK(c.max_message_size == 10 * 1048576, "size suffix M");
    CHECK(c.max_recipients == 150 && c.command_timeout == 60, "numbers");
    CHECK(c.auth_without_tls == 1, "booleans");
    CHECK(c.data_timeout == 600 && c.max_hops == 50, "unset keys keep their defaults");
    CHECK(c.pop3_timeout == 600, "pop3_timeout: 10 minutes (RFC 1939), not command_timeout");
    CHECK(c.max_junk_commands == 100 && c.session_time_limit == 3600 && c.data_time_limit == 1800,
          "session limits: 100 junk commands, an hour a session, half an hour a DATA");
}

static int in_list(const struct conf_networks *list, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s4->sin_addr);
    }
    return conf_in_networks(list, &ss);
}

static int in_relay(const struct yubin_conf *c, const char *ip)
{
    return in_list(&c->relay_networks, ip);
}

static void test_networks(void)
{
    struct yubin_conf c;
    char err[512];
    conf_defaults(&c);
    CHECK(!in_relay(&c, "127.0.0.1") && !in_relay(&c, "::1") && !in_relay(&c, "192.0.2.1"),
          "default: nobody relays without AUTH, not even loopback (a proxy there is everyone)");
    CHECK(!in_list(&c.submit_networks, "127.0.0.1") && !in_list(&c.proxy_networks, "::1"),
          "default: nobody submits without AUTH, no proxy is trusted");
    CHECK(strcmp(c.local_socket, "/run/yubin/smtp.sock") == 0 && c.submission_address[0] == 0,
          "default: sendmail submits over the local socket");
    CHECK(loads("relay_networks 10.1.0.0/16 192.0.2.7 2001:db8::/32 172.16.0.0/12\n", &c, err,
                sizeof err) == 0,
          "networks load");
    CHECK(in_relay(&c, "10.1.255.3") && !in_relay(&c, "10.2.0.1"), "/16 boundary");
    CHECK(in_relay(&c, "192.0.2.7") && !in_relay(&c, "192.0.2.8"), "bare address is /32");
    CHECK(in_relay(&c, "172.31.1.1") && !in_relay(&c, "172.32.0.1"), "/12 boundary");
    CHECK(in_relay(&c, "2001:db8:1::5") && !in_relay(&c, "2001:db9::1"), "IPv6 prefix");
    CHECK(in_relay(&c, "::ffff:10.1.2.3"), "v4-mapped addresses match IPv4 networks");
    CHECK(!in_relay(&c, "127.0.0.1"), "only what is listed relays");
    CHECK(!in_list(&c.submit_networks, "10.1.2.3"), "relay_networks is not submit_networks");
    CHECK(loads("submit_networks 10.1.0.0/16\nproxy_networks ::1 127.0.0.2\n", &c, err,
                sizeof err) == 0,
          "submit_networks and proxy_networks load (%s)", err);
    CHECK(in_list(&c.proxy_networks, "::1") && in_list(&c.proxy_networks, "127.0.0.2") &&
              !in_list(&c.proxy_networks, "127.0.0.1"),
          "proxy_networks");
    CHECK(in_list(&c.submit_networks, "10.1.2.3") && !in_relay(&c, "10.1.2.3"),
          "submit_networks is not relay_networks");
}

static void refused(const char *text, const char *want_in_err)
{
    struct yubin_conf c;
    char err[512] = "";
    int rc = loads(text, &c, err, sizeof err);
    CHECK(rc == -1 && strstr(err, want_in_err) != NULL && strstr(err, "yubin.conf:") != NULL,
          "refused with '%s': %s", want_in_err, err);
}

static void test_bad_files(void)
{
    refused("hostname a.test\nbogus_key 1\n", "yubin.conf:2: unknown key 'bogus_key'");
    refused("max_recipients ten\n", ":1: bad value for 'max_recipients'");
    refused("max_recipients 0\n", "bad value");
    refused("max_recipients 99999999999999999999999\n", "bad value");
    refused("command_timeout -5\n", "bad value");
    refused("hostname bad_host!\n", "bad value");
    refused("local_domains good.test bad..test\n", "bad value");
    refused("relay_networks 10.0.0.0/33\n", "bad value");
    refused("relay_networks not-an-ip\n", "bad value");
    refused("submit_networks 10.0.0.0/8 x\n", "bad value");
    refused("proxy_networks ::1/129\n", "bad value");
    refused("auth_without_tls maybe\n", "bad value");
    refused("user mailer\nuser other\n", ":2: key 'user' is set twice");
    refused("user\n", "has no value");
    refused("max_message_size 5Q\n", "bad value");
    struct yubin_conf c;
    char err[512] = "";
    CHECK(conf_load(&c, "/nonexistent/yubin.conf", err, sizeof err) == -1 &&
              strstr(err, "/nonexistent/yubin.conf") != NULL,
          "a missing file is an error: %s", err);
}

struct reports {
    char text[2048];
    int n;
};

static void collect(void *arg, const char *msg)
{
    struct reports *r = arg;
    size_t used = strlen(r->text);
    snprintf(r->text + used, sizeof r->text - used, "%s\n", msg);
    r->n++;
}

/* conf_check reads on past a bad line and reports each error with its line. */
static void test_every_error(void)
{
    struct yubin_conf c;
    struct reports r = {"", 0};
    const char *path = write_conf("yubin.conf", "bogus 1\nhostname ok.test\nmax_hops x\n"
                                                "hostname again.test\n");
    int n = conf_check(&c, path, collect, &r);
    CHECK(n == 3 && r.n == 3, "three errors reported: %d (%s)", n, r.text);
    CHECK(strstr(r.text, "yubin.conf:1: unknown key 'bogus'") != NULL, "line 1: %s", r.text);
    CHECK(strstr(r.text, "yubin.conf:3: bad value for 'max_hops'") != NULL, "line 3");
    CHECK(strstr(r.text, "yubin.conf:4: key 'hostname' is set twice") != NULL, "line 4");
    CHECK(strcmp(c.hostname, "ok.test") == 0, "the good lines still count");
    struct reports none = {"", 0};
    CHECK(conf_check(&c, write_conf("yubin.conf", "max_hops 5\n"), collect, &none) == 0 &&
              none.n == 0,
          "a good file reports nothing");
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 2;
    test_good_file();
    test_networks();
    test_bad_files();
    test_every_error();
    unlink(write_conf("yubin.conf", ""));
    rmdir(dir);
    return tap_done();
}
