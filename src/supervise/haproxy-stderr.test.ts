import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alsoLogged } from './haproxy-stderr.js';

// HAProxy 2.6.12's stderr around a reload and a soft-stop with `log stdout` (master pid 858).
const STDERR = `[NOTICE]   (858) : New worker (871) forked
[NOTICE]   (858) : Loading success.
[WARNING]  (871) : Server be/s1 is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.
[ALERT]    (871) : backend 'be' has no server available!
[WARNING]  (871) : Server be/s1 is UP, reason: Layer4 check passed, check duration: 0ms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.
[NOTICE]   (858) : Reloading HAProxy
[NOTICE]   (858) : New worker (1121) forked
[NOTICE]   (858) : Loading success.
[WARNING]  (871) : Proxy fe stopped (cumulated conns: FE: 0, BE: 0).
[WARNING]  (871) : Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).
[WARNING]  (871) : Stopping frontend fe in 0 ms.
[WARNING]  (871) : Proxy fe hard-stopped (3 remaining conns will be closed).
[NOTICE]   (858) : haproxy version is 2.6.12-1+deb12u4
[WARNING]  (858) : Former worker (871) exited with code 0 (Exit)
[ALERT]    (858) : Current worker (1121) exited with code 139 (Segmentation fault)
[ALERT]    (1121) : sendmsg()/writev() failed in logger #1: Resource temporarily unavailable (errno=11)
[WARNING]  (858) : All workers exited. Exiting... (0)`;

test("a worker's copy of an event HAProxy also logs is recognised; everything else is kept", () => {
  const kept = STDERR.split('\n').filter((l) => !alsoLogged(l, 858));
  assert.deepEqual(kept, [
    '[NOTICE]   (858) : New worker (871) forked',
    '[NOTICE]   (858) : Loading success.',
    '[NOTICE]   (858) : Reloading HAProxy',
    '[NOTICE]   (858) : New worker (1121) forked',
    '[NOTICE]   (858) : Loading success.',
    '[NOTICE]   (858) : haproxy version is 2.6.12-1+deb12u4',
    '[WARNING]  (858) : Former worker (871) exited with code 0 (Exit)',
    '[ALERT]    (858) : Current worker (1121) exited with code 139 (Segmentation fault)',
    '[ALERT]    (1121) : sendmsg()/writev() failed in logger #1: Resource temporarily unavailable (errno=11)',
    '[WARNING]  (858) : All workers exited. Exiting... (0)',
  ]);
  assert.equal(alsoLogged('Proxy fe stopped (cumulated conns: FE: 0, BE: 0).', 858), false, 'the log copy itself is not touched');
});
