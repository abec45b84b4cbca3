/* sbx serve: the dashboard (serve/dash.c). serve.c hands it the requests
 * for / and /dashboard/..., asks it whether a request without a bearer
 * token carries a dashboard session, and starts it with the loop. */
#ifndef SBX_SERVE_DASH_H
#define SBX_SERVE_DASH_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "serve/serve.h"

struct dash_req;

/* The loop has started: the sampler thread and the 1 s tick begin. */
void dash_start(struct lws_context *ctx);
/* Does the dashboard answer this callback? On LWS_CALLBACK_HTTP it claims
 * its own paths; later callbacks of a claimed request go to it too; on the
 * close callbacks it lets go of *d and returns false (serve.c cleans up
 * its part). */
bool dash_claims(struct lws *wsi, enum lws_callback_reasons reason, struct dash_req **d,
		 const void *in);
int dash_callback(struct lws *wsi, enum lws_callback_reasons reason, struct dash_req **d,
		  void *in, size_t len);
/* A request without a bearer token: the owner of its dashboard session,
 * if it has the session cookie, the session's CSRF token in
 * X-SBX-CSRF and an Origin of this server (-EACCES otherwise). The API's
 * own handlers then act on it exactly as on a token. */
int dash_auth(struct lws *wsi, char owner[SERVE_OWNER_LEN + 1]);

/* The static files, embedded at build time (scripts/embed.sh). */
struct dash_file {
	const char *name;
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct dash_file dash_files[];
extern const size_t dash_nfiles;

/* ---- what serve.c lends it (loop thread only) ---- */
struct sbox *serve_boxes(void);

#endif
