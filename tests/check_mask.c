/*
 * check_mask.c: masking of URL secrets (core/mask.c): userinfo, query and
 * fragment, the path of webhook hosts whose path is the credential (Slack,
 * Discord, Telegram, Teams), URLs inside free text such as curl error
 * messages, text without URLs, and the truncating copy.
 */
#include <check.h>
#include <string.h>

#include "core/mask.h"
#include "tests/check_main.h"

/* Asserts that in masks to want. */
static void assert_masked(const char *in, const char *want)
{
    buf b;

    buf_init(&b, 4096);
    ck_assert_int_eq(mask_urls(in, &b), HERALD_OK);
    ck_assert_str_eq(b.len ? buf_str(&b) : "", want);
    buf_free(&b);
}

START_TEST(test_userinfo_and_query)
{
    assert_masked("http://user:pw@127.0.0.1:9101/alerts?key=q",
                  "http://***@127.0.0.1:9101/alerts?***");
    assert_masked("https://token@example.com/", "https://***@example.com/");
    assert_masked("https://example.com/a/b#frag",
                  "https://example.com/a/b?***");
    assert_masked("https://example.com:8443/alerts",
                  "https://example.com:8443/alerts");
    assert_masked("https://example.com", "https://example.com");
}
END_TEST

START_TEST(test_secret_paths)
{
    assert_masked("https://hooks.slack.com/services/T000/B000/XXXX",
                  "https://hooks.slack.com/***");
    assert_masked("https://HOOKS.SLACK.COM/services/T/B/X?x=1",
                  "https://HOOKS.SLACK.COM/***");
    assert_masked("https://discord.com/api/webhooks/1/tok",
                  "https://discord.com/***");
    assert_masked("https://api.telegram.org/bot123:ABC/sendMessage",
                  "https://api.telegram.org/***");
    assert_masked("https://acme.webhook.office.com/webhookb2/abc",
                  "https://acme.webhook.office.com/***");
    /* A host that only ends like one is not one. */
    assert_masked("https://nothooks.slack.com/services/a",
                  "https://nothooks.slack.com/services/a");
}
END_TEST

START_TEST(test_free_text)
{
    assert_masked("Failed to connect to 127.0.0.1 port 1: Connection refused",
                  "Failed to connect to 127.0.0.1 port 1: Connection refused");
    assert_masked("Could not reach \"https://hooks.slack.com/services/T/B/S\" "
                  "or http://u:p@h/x?y after 2 tries",
                  "Could not reach \"https://hooks.slack.com/***\" or "
                  "http://***@h/x?*** after 2 tries");
    assert_masked("", "");
    assert_masked("://", "://");
}
END_TEST

START_TEST(test_copy_truncates)
{
    char out[24];

    mask_urls_copy("see https://hooks.slack.com/services/T/B/SECRET now", out,
                   sizeof(out));
    ck_assert_ptr_null(strstr(out, "SECRET"));
    ck_assert_ptr_null(strstr(out, "services"));
    ck_assert_int_lt(strlen(out), sizeof(out));
    mask_urls_copy("short", out, sizeof(out));
    ck_assert_str_eq(out, "short");
}
END_TEST

int main(void)
{
    const check_case cases[] = {
        {"userinfo_and_query", test_userinfo_and_query},
        {"secret_paths", test_secret_paths},
        {"free_text", test_free_text},
        {"copy_truncates", test_copy_truncates},
    };
    Suite *s = suite_create("mask");

    check_suite_add(s, cases, CHECK_N_CASES(cases), NULL, NULL);
    return check_suite_run(s);
}
