/* SPDX-License-Identifier: MIT */
/* test_jsonrpc.c: what the control server answers to each line, checked
 * against the examples of the JSON-RPC 2.0 specification (jsonrpc.org,
 * section 7) and the refusals rpc.h promises. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonrpc.h"
#include "rpc.h"

static int calls;
static int commits;
static const char *last_name;
static char last_name_copy[64];

/* subtract: {"minuend","subtrahend"} -> {"value"} */
static int m_subtract(struct rpc_call *c)
{
	uint64_t a = 0, b = 0;
	int ret;

	calls++;
	if ((ret = rpc_get_uint(c, "minuend", 0, 1000, &a)) < 0 ||
	    (ret = rpc_get_uint(c, "subtrahend", 0, 1000, &b)) < 0) {
		return ret;
	}
	json_object_object_add(rpc_call_result(c), "value", json_object_new_int64((int64_t)a - (int64_t)b));
	return 0;
}

static int m_update(struct rpc_call *c)
{
	calls++;
	rpc_call_set_changed(c);
	return 0;
}

static int m_name(struct rpc_call *c)
{
	int ret = rpc_get_str(c, "name", true, &last_name);

	calls++;
	if (ret == 0) {
		snprintf(last_name_copy, sizeof(last_name_copy), "%s", last_name);
	}
	return ret;
}

static int m_fail(struct rpc_call *c)
{
	calls++;
	errmsg_set(rpc_call_err(c), "thing x is busy");
	return -EBUSY;
}

static const struct rpc_method methods[] = {
	{"subtract", m_subtract}, {"update", m_update}, {"name", m_name}, {"fail", m_fail},
};

static int commit(void *ctx, struct errmsg *err)
{
	commits++;
	return 0;
}

static const struct rpc_dispatcher disp = {methods, 4, NULL, commit, "testd"};

/* Answers 'line' and returns the parsed answer (NULL: none sent). */
static struct json_object *ask(const char *line)
{
	char *text = rpc_jsonrpc_answer(&disp, line, strlen(line));
	struct json_object *o;

	if (!text) {
		return NULL;
	}
	assert_int_equal(text[strlen(text) - 1], '\n');
	assert_null(memchr(text, '\n', strlen(text) - 1));
	o = json_tokener_parse(text);
	assert_non_null(o);
	free(text);
	return o;
}

static int error_code(struct json_object *o)
{
	struct json_object *e, *code;

	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_true(json_object_object_get_ex(e, "code", &code));
	return json_object_get_int(code);
}

static void assert_id_null(struct json_object *o)
{
	struct json_object *id;

	assert_true(json_object_object_get_ex(o, "id", &id));
	assert_null(id);
}

static void test_named_params_answered_with_same_id(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", "
				    "\"params\": {\"subtrahend\": 23, \"minuend\": 42}, \"id\": 3}");
	struct json_object *r, *v, *id, *ver;

	assert_true(json_object_object_get_ex(o, "result", &r));
	assert_true(json_object_object_get_ex(r, "value", &v));
	assert_int_equal(json_object_get_int(v), 19);
	assert_true(json_object_object_get_ex(o, "id", &id));
	assert_int_equal(json_object_get_int(id), 3);
	assert_true(json_object_object_get_ex(o, "jsonrpc", &ver));
	assert_string_equal(json_object_get_string(ver), "2.0");
	json_object_put(o);
}

static void test_positional_params_refused(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", "
				    "\"params\": [42, 23], \"id\": 1}");

	assert_int_equal(error_code(o), RPC_INVALID_PARAMS);
	json_object_put(o);
}

static void test_notification_runs_and_gets_no_answer(void **state)
{
	calls = commits = 0;
	assert_null(ask("{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": {}}"));
	assert_int_equal(calls, 1);
	assert_int_equal(commits, 1);
	/* Even a failing notification is not answered. */
	assert_null(ask("{\"jsonrpc\": \"2.0\", \"method\": \"foobar\"}"));
}

static void test_unknown_method(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}");
	struct json_object *id;

	assert_int_equal(error_code(o), RPC_NO_METHOD);
	assert_true(json_object_object_get_ex(o, "id", &id));
	assert_string_equal(json_object_get_string(id), "1");
	json_object_put(o);
}

static void test_invalid_json_is_parse_error_with_null_id(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]");

	assert_int_equal(error_code(o), RPC_PARSE_ERROR);
	assert_id_null(o);
	json_object_put(o);
}

static void test_invalid_request_object(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}");

	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	assert_id_null(o);
	json_object_put(o);
}

static void test_version_must_be_2_0(void **state)
{
	struct json_object *o;

	calls = 0;
	o = ask("{\"jsonrpc\": \"1.0\", \"method\": \"update\", \"id\": 7}");
	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	json_object_put(o);
	o = ask("{\"method\": \"update\", \"id\": 7}");
	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	json_object_put(o);
	assert_int_equal(calls, 0);
}

static void test_trailing_garbage_refused(void **state)
{
	struct json_object *o;

	calls = 0;
	o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"id\": 1} xyz");
	assert_int_equal(error_code(o), RPC_PARSE_ERROR);
	json_object_put(o);
	o = ask("{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"id\": 1}{\"jsonrpc\": \"2.0\"}");
	assert_int_equal(error_code(o), RPC_PARSE_ERROR);
	json_object_put(o);
	assert_int_equal(calls, 0);
}

static void test_numeric_ids_echoed_exactly(void **state)
{
	static const char *const ids[] = {"123456789012345678901234567890", "-5", "1.5e3", "0",
					  "18446744073709551616", "3.0"};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char line[256], *text, want[128];

		snprintf(line, sizeof(line),
			 "{\"jsonrpc\":\"2.0\",\"method\":\"update\",\"params\":{},\"id\":%s}", ids[i]);
		text = rpc_jsonrpc_answer(&disp, line, strlen(line));
		assert_non_null(text);
		snprintf(want, sizeof(want), "\"id\":%s", ids[i]);
		assert_non_null(strstr(text, want));
		free(text);
	}
}

static void test_embedded_nul_refused_everywhere(void **state)
{
	struct json_object *o;

	calls = 0;
	o = ask("{\"jsonrpc\":\"2.0\",\"method\":\"name\",\"params\":{\"name\":\"a\\u0000../../etc\"},\"id\":1}");
	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	json_object_put(o);
	o = ask("{\"jsonrpc\":\"2.0\",\"method\":\"name\",\"params\":{\"n\\u0000ame\":\"a\"},\"id\":1}");
	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	json_object_put(o);
	assert_int_equal(calls, 0);
	/* An escaped backslash followed by u0000 is plain text, not NUL. */
	o = ask("{\"jsonrpc\":\"2.0\",\"method\":\"name\",\"params\":{\"name\":\"a\\\\u0000\"},\"id\":1}");
	assert_false(json_object_object_get_ex(o, "error", NULL));
	assert_string_equal(last_name_copy, "a\\u0000");
	json_object_put(o);
}

static void test_errors_carry_sentence_and_errno(void **state)
{
	struct json_object *o = ask("{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":1}");
	struct json_object *e, *msg, *data, *name;

	assert_int_equal(error_code(o), RPC_FAILED);
	json_object_object_get_ex(o, "error", &e);
	assert_true(json_object_object_get_ex(e, "message", &msg));
	assert_string_equal(json_object_get_string(msg), "thing x is busy");
	assert_true(json_object_object_get_ex(e, "data", &data));
	assert_true(json_object_object_get_ex(data, "name", &name));
	assert_string_equal(json_object_get_string(name), "EBUSY");
	json_object_put(o);
	o = ask("{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":{\"minuend\":\"x\"},\"id\":1}");
	assert_int_equal(error_code(o), RPC_INVALID_PARAMS);
	json_object_put(o);
}

static void test_batch_examples(void **state)
{
	struct json_object *o;

	/* Invalid JSON in a batch: one parse error. */
	o = ask("[{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},"
		"{\"jsonrpc\": \"2.0\", \"method\"]");
	assert_true(json_object_is_type(o, json_type_object));
	assert_int_equal(error_code(o), RPC_PARSE_ERROR);
	json_object_put(o);
	/* An empty array: one invalid request. */
	o = ask("[]");
	assert_true(json_object_is_type(o, json_type_object));
	assert_int_equal(error_code(o), RPC_INVALID_REQUEST);
	json_object_put(o);
	/* [1] and [1,2,3]: an invalid request for each. */
	o = ask("[1]");
	assert_int_equal(json_object_array_length(o), 1);
	assert_int_equal(error_code(json_object_array_get_idx(o, 0)), RPC_INVALID_REQUEST);
	json_object_put(o);
	o = ask("[1,2,3]");
	assert_int_equal(json_object_array_length(o), 3);
	json_object_put(o);
	/* Mixed: notifications get nothing, the rest answers in order. */
	o = ask("[{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"minuend\": 7, \"subtrahend\": 2}, \"id\": \"1\"},"
		"{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": {}},"
		"{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"minuend\": 42, \"subtrahend\": 23}, \"id\": 99999999999999999999999},"
		"{\"foo\": \"boo\"},"
		"{\"jsonrpc\": \"2.0\", \"method\": \"foo.get\", \"params\": {\"name\": \"myself\"}, \"id\": \"5\"}]");
	assert_int_equal(json_object_array_length(o), 4);
	assert_false(json_object_object_get_ex(json_object_array_get_idx(o, 0), "error", NULL));
	assert_int_equal(error_code(json_object_array_get_idx(o, 2)), RPC_INVALID_REQUEST);
	assert_int_equal(error_code(json_object_array_get_idx(o, 3)), RPC_NO_METHOD);
	json_object_put(o);
	/* Inside a batch too, a numeric id comes back byte for byte. */
	{
		const char *line = "[{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"id\": \"1\"}, "
				   "{\"jsonrpc\": \"2.0\", \"method\": \"update\", "
				   "\"id\": 99999999999999999999999}]";
		char *text = rpc_jsonrpc_answer(&disp, line, strlen(line));

		assert_non_null(strstr(text, "\"id\":99999999999999999999999"));
		free(text);
	}
	/* All notifications: nothing at all. */
	assert_null(ask("[{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": {}},"
			"{\"jsonrpc\": \"2.0\", \"method\": \"update\"}]"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_params_answered_with_same_id),
		cmocka_unit_test(test_positional_params_refused),
		cmocka_unit_test(test_notification_runs_and_gets_no_answer),
		cmocka_unit_test(test_unknown_method),
		cmocka_unit_test(test_invalid_json_is_parse_error_with_null_id),
		cmocka_unit_test(test_invalid_request_object),
		cmocka_unit_test(test_version_must_be_2_0),
		cmocka_unit_test(test_trailing_garbage_refused),
		cmocka_unit_test(test_numeric_ids_echoed_exactly),
		cmocka_unit_test(test_embedded_nul_refused_everywhere),
		cmocka_unit_test(test_errors_carry_sentence_and_errno),
		cmocka_unit_test(test_batch_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
