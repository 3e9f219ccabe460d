import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { AccessList } from '../../src/admission/access-list.js';
import { randomAddresses, randomCidrs, seededRandom } from '../../bench/access-list.js';

type Rule = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** The obvious oracle: try every rule with ipaddr.js, mapped IPv4 clients as IPv4. */
function linearMatch(rules: readonly Rule[], address: string): boolean {
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return rules.some((rule) => rule[0].kind() === parsed.kind() && parsed.match(rule));
}

describe('AccessList at scale', { timeout: 60_000 }, () => {
  it('agrees with a linear scan over 100,000 mixed IPv4/IPv6 rules', () => {
    const random = seededRandom(42);
    const cidrs = randomCidrs(100_000, random);
    const rules = cidrs.map((cidr) => ipaddr.parseCIDR(cidr));
    const list = AccessList.parse(undefined, cidrs);
    const addresses = randomAddresses(400, cidrs, random);
    let denied = 0;
    for (const address of addresses) {
      const expected = linearMatch(rules, address);
      assert.equal(list.allows(address), !expected, address);
      if (expected) denied++;
    }
    // Both outcomes must be exercised for the comparison to mean anything.
    assert.ok(denied > 100 && denied < 380, `denied ${denied} of ${addresses.length}`);
  });

  it('agrees with a linear scan on small, heavily overlapping allow/deny lists', () => {
    // Rules share one /20 (or /116) so overlaps, nesting and adjacency are common.
    const v4Rule = fc
      .tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 20, max: 32 }))
      .map(([low, prefix]) => `10.20.${(low >> 8) + 0x10}.${low & 0xff}/${prefix}`);
    const v6Rule = fc
      .tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 116, max: 128 }))
      .map(([low, prefix]) => `2001:db8::${low.toString(16)}/${prefix}`);
    const rule = fc.oneof(v4Rule, v6Rule);
    const v4Client = fc
      .integer({ min: 0, max: 4095 })
      .chain((low) => fc.constantFrom(`10.20.${(low >> 8) + 0x10}.${low & 0xff}`, `::ffff:10.20.${(low >> 8) + 0x10}.${low & 0xff}`));
    const v6Client = fc.integer({ min: 0, max: 4095 }).map((low) => `2001:db8::${low.toString(16)}`);
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 12 }),
        fc.array(rule, { maxLength: 12 }),
        fc.array(fc.oneof(v4Client, v6Client), { minLength: 1, maxLength: 20 }),
        (allow, deny, clients) => {
          const list = AccessList.parse(allow, deny);
          const allowRules = allow.map((cidr) => ipaddr.parseCIDR(cidr));
          const denyRules = deny.map((cidr) => ipaddr.parseCIDR(cidr));
          for (const client of clients) {
            const expected = !linearMatch(denyRules, client) && (allow.length === 0 || linearMatch(allowRules, client));
            assert.equal(list.allows(client), expected, client);
          }
        },
      ),
      { numRuns: 500, seed: 4 },
    );
  });
});
