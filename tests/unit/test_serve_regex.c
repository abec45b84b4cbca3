/* Unit tests for sbx serve's pattern translation (serve/regex.c): the
 * RegExps of walk's match/skip and the globs of expandGlob, compiled with
 * regcomp and run against paths, as Deno std would match them; and what
 * has no POSIX form refused with its reason. serve/regex.c is included
 * as it is (it calls nothing of libwebsockets or jansson). */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/regex.c"

static bool js_matches(const char *src, const char *flags, const char *path)
{
	char msg[512], *ere;
	regex_t re;
	bool hit;

	assert_int_equal(serve_js_regex(src, flags, &ere, msg, sizeof(msg)), 0);
	assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_NOSUB |
				 (strchr(flags, 'i') ? REG_ICASE : 0)), 0);
	hit = regexec(&re, path, 0, NULL, 0) == 0;
	regfree(&re);
	free(ere);
	return hit;
}

static bool glob_matches(const char *glob, const char *path)
{
	char msg[512], *ere;
	regex_t re;
	bool hit;

	assert_int_equal(serve_glob_regex(glob, true, true, &ere, msg, sizeof(msg)), 0);
	assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_NOSUB), 0);
	hit = regexec(&re, path, 0, NULL, 0) == 0;
	regfree(&re);
	free(ere);
	return hit;
}

static void test_js(void **state)
{
	static const struct {
		const char *src, *flags, *path;
		bool hit;
	} cases[] = {
		{ "\\.ts$", "", "/a/b.ts", true },
		{ "\\.ts$", "", "/a/b.tsx", false },
		{ "\\/lib\\/\\w+\\.(?:ts|md)$", "", "/x/lib/d.md", true },
		{ "\\/lib\\/\\w+\\.(?:ts|md)$", "", "/x/lib/d.js", false },
		{ "^/a/\\d{2,3}$", "", "/a/123", true },
		{ "^/a/\\d{2,3}$", "", "/a/1", false },
		{ "node_modules", "", "/p/node_modules/x", true },
		{ "README", "i", "/p/readme.md", true },
		{ "README", "", "/p/readme.md", false },
		{ "a.*?b", "", "/axxb", true },
		{ "[\\d_]+$", "", "/x/1_2", true },
		{ "\\s", "", "/a b", true },
		{ "x{", "", "/x{", true }, /* a literal brace, as JavaScript reads it */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (js_matches(cases[i].src, cases[i].flags, cases[i].path) != cases[i].hit)
			fail_msg("/%s/%s on %s: expected %s", cases[i].src, cases[i].flags,
				 cases[i].path, cases[i].hit ? "a match" : "none");
}

static void test_js_refused(void **state)
{
	static const char *const bad[] = { "(?<=a)b", "(?!x)", "(?<n>a)", "(a)\\1", "a\\", "[a", "\\p{L}" };
	char msg[512], *ere;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		assert_int_equal(serve_js_regex(bad[i], "", &ere, msg, sizeof(msg)), -EINVAL);
		assert_null(ere);
		assert_non_null(strstr(msg, "POSIX"));
	}
}

static void test_glob(void **state)
{
	static const struct {
		const char *glob, *path;
		bool hit;
	} cases[] = {
		{ "/d/*.ts", "/d/a.ts", true },
		{ "/d/*.ts", "/d/s/a.ts", false },
		{ "/d/**/*.ts", "/d/a.ts", true },
		{ "/d/**/*.ts", "/d/s/t/a.ts", true },
		{ "/d/**", "/d", true },
		{ "/d/?.c", "/d/x.c", true },
		{ "/d/?.c", "/d/xy.c", false },
		{ "/d/[ab].c", "/d/b.c", true },
		{ "/d/[!ab].c", "/d/b.c", false },
		{ "/d/*.{ts,md}", "/d/x.md", true },
		{ "/d/*.{ts,md}", "/d/x.js", false },
		{ "/d/+(a|b).@(ts|js)", "/d/ab.js", true },
		{ "/d/+(a|b).@(ts|js)", "/d/c.js", false },
		{ "/d/a.b", "/d/axb", false }, /* a dot is itself */
		{ "/d/(x)", "/d/(x)", true },
		{ "/", "/", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (glob_matches(cases[i].glob, cases[i].path) != cases[i].hit)
			fail_msg("%s on %s: expected %s", cases[i].glob, cases[i].path,
				 cases[i].hit ? "a match" : "none");
}

static void test_glob_refused(void **state)
{
	static const char *const bad[] = { "relative/*.ts", "/d/!(a).ts", "/d/{a,b", "/d/@(a" };
	char msg[512], *ere;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(serve_glob_regex(bad[i], true, true, &ere, msg, sizeof(msg)), -EINVAL);
		assert_null(ere);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_js),
		cmocka_unit_test(test_js_refused),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_glob_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
