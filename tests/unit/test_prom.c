/* test_prom.c - the Prometheus text writer: heads, unlabelled values, labelled samples with
 * escaping, and that a sequence of calls builds exactly the exposition lines expected. */
#include <stdlib.h>

#include "check.h"
#include "core/prom.h"

static const prom_metric up = {"x_up", "gauge", "1 while up."};

static void test_value(void)
{
    util_buf b = {0};
    CHECK_EQ_INT(prom_value(&b, &up, -3), ER_OK);
    CHECK_EQ_STR(b.data, "# HELP x_up 1 while up.\n# TYPE x_up gauge\nx_up -3\n");
    util_buf_free(&b);
}

static void test_label_escaping(void)
{
    util_buf b = {0};
    CHECK_EQ_INT(prom_label(&b, "a\\b\"c\nd"), ER_OK);
    CHECK_EQ_STR(b.data, "a\\\\b\\\"c\\nd");
    CHECK_EQ_INT(prom_label(&b, NULL), ER_OK); /* nothing appended */
    CHECK_EQ_INT(prom_label(&b, ""), ER_OK);
    CHECK_EQ_STR(b.data, "a\\\\b\\\"c\\nd");
    util_buf_free(&b);
}

static void test_samples(void)
{
    util_buf b = {0};
    const char *kv[] = {"source", "cam \"1\"", "kind", "runner-ws"};
    CHECK_EQ_INT(prom_head(&b, &(prom_metric){"x_total", "counter", "Things."}), ER_OK);
    CHECK_EQ_INT(prom_sample(&b, "x_total", kv, 2, 18446744073709551615ull), ER_OK);
    CHECK_EQ_INT(prom_sample(&b, "x_total", kv, 1, 7), ER_OK);
    CHECK_EQ_INT(prom_sample(&b, "x_total", NULL, 0, 0), ER_OK);
    CHECK_EQ_STR(b.data, "# HELP x_total Things.\n# TYPE x_total counter\n"
                         "x_total{source=\"cam \\\"1\\\"\",kind=\"runner-ws\"} "
                         "18446744073709551615\n"
                         "x_total{source=\"cam \\\"1\\\"\"} 7\n"
                         "x_total 0\n");
    util_buf_free(&b);
}

int main(void)
{
    test_value();
    test_label_escaping();
    test_samples();
    return check_summary();
}
