// A peer process for tcp-transport.test.ts (run with `node --import tsx`; it is not a test file).
// It starts its own actor system with a counter, connects to the test's TcpTransportServer at the
// port and secret it is given in the environment, says 'ready' on stdout and then waits to be killed.
import { ActorSystem, connectTcpTransport } from '../../../src/actors/index.js';
import { counterSpec } from '../../fixtures/actors/counter.js';

const port = Number(process.env.DINOMO_TEST_PORT);
const secret = process.env.DINOMO_TEST_SECRET ?? '';
const system = ActorSystem.start({ node: 'child', process: process.pid, thread: 0 });
system.spawn('counter', counterSpec());
await connectTcpTransport(system, { port, secret });
process.stdout.write(`ready ${system.address}\n`);
