import { loadAllWireFixtures } from '@tokenwise/testkit';
import { describeReplayChecks, replayAll, replayThroughMemorySink } from './helpers/fixture-replay-checks.js';

/**
 * Every llm-wire case of both corpora, replayed from the fake upstream through the real proxy on real
 * sockets into an in-memory sink. New folders are picked up without code changes. The same checks run
 * against the stores in packages/cli/test/fixture-replay-stores.test.ts.
 */

const fixtures = loadAllWireFixtures();

describeReplayChecks(fixtures, replayAll(fixtures, replayThroughMemorySink));
