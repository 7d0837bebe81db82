"""What every page we serve shares: who may ask (the token rule, its cookie, CSRF), what the browser may do
with our pages (CSP and the other security headers), and what a client may cost us (connection deadlines,
a connection cap, bounded bodies)."""
