import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, type CidrRange } from '../../src/admission/cidr.js';
import { IpRangeSet } from '../../src/admission/ip-range-set.js';

function rangeSet(...cidrs: string[]): IpRangeSet {
  return IpRangeSet.from(cidrs.map((cidr) => parseCidr(cidr) as CidrRange));
}

describe('IpRangeSet', { timeout: 10_000 }, () => {
  it('merges overlapping, nested and adjacent ranges into disjoint ones', () => {
    assert.deepEqual(rangeSet('10.0.0.0/24', '10.0.1.0/24', '10.0.0.0/25', '10.0.3.0/24').rangeCount, { ipv4: 2, ipv6: 0 });
    assert.deepEqual(rangeSet('2001:db8::/127', '2001:db8::2/127', '2001:db8::/120', '2001:db8::1:0/112').rangeCount, { ipv4: 0, ipv6: 2 });
    assert.deepEqual(rangeSet('0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1').rangeCount, { ipv4: 1, ipv6: 1 });
  });

  it('is empty without ranges', () => {
    assert.equal(rangeSet().isEmpty, true);
    assert.equal(rangeSet('::1').isEmpty, false);
  });
});
