// Package dashboard is the browser front end of flowyte (CONTRACT §13): the
// embedded single-page app (built by esbuild from web/ into dist/) and the
// server-side dashboard sessions that let it call the API with an HttpOnly
// cookie instead of a Bearer key, with CSRF protection. It imports neither
// gin nor the server package: the daemon injects how a key is verified.
package dashboard
