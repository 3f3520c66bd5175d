/**
 * Seed 003's haproxy.cfg ("Reliable apps with (HA)Proxy — Part 3", shared/seeds/003_*.txt),
 * verbatim, with a helper that rewrites only its two ports.
 */
export const SEED_003_CONFIG = `global
    log stdout format raw local0 debug
defaults
    log global
    mode http
    option httplog clf
    option dontlognull
    option httpchk
    default-server check inter 5s fall 5 downinter 1s rise 2
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    timeout http-request 1s
listen myapp
    bind :8080
    option httpchk GET /
    server srv1 127.0.0.1:8081 check
program myserver
    command /usr/bin/python3 -m http.server 8081
`;

/**
 * Replace the frontend port 8080 and the app port 8081 (bind, server and command), and keep both
 * listeners on loopback (test rule: servers we start listen on 127.0.0.1 only).
 */
export function seed003WithPorts(frontPort: number, appPort: number): string {
  return SEED_003_CONFIG.replace('bind :8080', `bind 127.0.0.1:${frontPort}`)
    .replace('127.0.0.1:8081', `127.0.0.1:${appPort}`)
    .replace('http.server 8081', `http.server --bind 127.0.0.1 ${appPort}`);
}
