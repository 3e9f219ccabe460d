import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccessList, CidrError, cidrProblem } from '../../src/admission/access-list.js';

describe('AccessList', { timeout: 10_000 }, () => {
  it('admits everyone without rules', () => {
    const list = AccessList.parse(undefined, []);
    assert.equal(list.isOpen, true);
    assert.equal(list.allows('203.0.113.9'), true);
    assert.equal(list.allows('2001:db8::1'), true);
  });

  it('with an allow list, admits only matching addresses', () => {
    const list = AccessList.parse(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'], undefined);
    assert.equal(list.allows('10.255.255.255'), true);
    assert.equal(list.allows('11.0.0.0'), false);
    assert.equal(list.allows('9.255.255.255'), false);
    assert.equal(list.allows('192.168.1.7'), true);
    assert.equal(list.allows('192.168.1.8'), false);
    assert.equal(list.allows('2001:db8:ffff::1'), true);
    assert.equal(list.allows('2001:db9::'), false);
  });

  it('deny wins over allow', () => {
    const list = AccessList.parse(['10.0.0.0/8', '::1'], ['10.9.0.0/16', '::1/128']);
    assert.equal(list.allows('10.8.255.255'), true);
    assert.equal(list.allows('10.9.0.0'), false);
    assert.equal(list.allows('10.9.255.255'), false);
    assert.equal(list.allows('10.10.0.0'), true);
    assert.equal(list.allows('::1'), false);
  });

  it('with only a deny list, admits everything else', () => {
    const list = AccessList.parse(undefined, ['127.0.0.2', 'fe80::/10']);
    assert.equal(list.allows('127.0.0.1'), true);
    assert.equal(list.allows('127.0.0.2'), false);
    assert.equal(list.allows('fe80::1%eth0'), false, 'a zone index on a client address is ignored');
    assert.equal(list.allows('2001:db8::1'), true);
  });

  it('matches IPv4-mapped IPv6 clients against IPv4 rules, in dotted and hex form', () => {
    const list = AccessList.parse(['10.1.0.0/16'], ['10.1.2.3']);
    assert.equal(list.allows('::ffff:10.1.9.9'), true);
    assert.equal(list.allows('::FFFF:10.1.9.9'), true);
    assert.equal(list.allows('::ffff:a01:909'), true);
    assert.equal(list.allows('::ffff:10.1.2.3'), false);
    assert.equal(list.allows('::ffff:10.2.0.1'), false);
  });

  it('reads rules written as mapped IPv4 as IPv4 rules; other IPv6 rules do not match IPv4 clients', () => {
    const mapped = AccessList.parse(['::ffff:10.0.0.0/104'], undefined);
    assert.equal(mapped.allows('10.200.0.1'), true);
    assert.equal(mapped.allows('11.0.0.1'), false);
    const allV6 = AccessList.parse(undefined, ['::/0']);
    assert.equal(allV6.allows('2001:db8::1'), false);
    assert.equal(allV6.allows('10.0.0.1'), true);
    assert.equal(allV6.allows('::ffff:10.0.0.1'), true);
  });

  it('handles /0 and the ends of both address spaces', () => {
    const v4 = AccessList.parse(['0.0.0.0/0'], undefined);
    assert.equal(v4.allows('0.0.0.0'), true);
    assert.equal(v4.allows('255.255.255.255'), true);
    assert.equal(v4.allows('::1'), false);
    const v6 = AccessList.parse(['::/0'], ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    assert.equal(v6.allows('::'), true);
    assert.equal(v6.allows('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'), true);
    assert.equal(v6.allows('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), false);
  });

  it('merges overlapping and adjacent rules without losing coverage', () => {
    const list = AccessList.parse(['10.0.0.0/24', '10.0.1.0/24', '10.0.0.128/25', '10.0.3.0/24'], undefined);
    assert.equal(list.allows('10.0.1.255'), true);
    assert.equal(list.allows('10.0.2.0'), false);
    assert.equal(list.allows('10.0.3.0'), true);
  });

  it('accepts host bits below the prefix, as the network', () => {
    const list = AccessList.parse(['10.1.2.3/8', '2001:db8::5/64'], undefined);
    assert.equal(list.allows('10.200.0.0'), true);
    assert.equal(list.allows('2001:db8::ffff'), true);
  });

  it('refuses unparseable client addresses when rules exist', () => {
    assert.equal(AccessList.parse(undefined, ['10.0.0.0/8']).allows('not-an-ip'), false);
    assert.equal(AccessList.parse(undefined, ['10.0.0.0/8']).allows(''), false);
  });

  it('names the bad entry, its list and index', () => {
    assert.throws(
      () => AccessList.parse(['10.0.0.0/8'], ['10.9.0.0/16', '10.0.0.0/33']),
      (error: unknown) => {
        assert.ok(error instanceof CidrError);
        assert.equal(error.list, 'deny');
        assert.equal(error.index, 1);
        assert.equal(error.entry, '10.0.0.0/33');
        assert.match(error.message, /^deny\[1\]: "10\.0\.0\.0\/33": prefix length 33 is out of range 0-32/);
        return true;
      },
    );
    assert.throws(() => AccessList.parse(['10.0.0'], undefined), /^CidrError: allow\[0\]: "10\.0\.0": "10\.0\.0" is not an IPv4 or IPv6 address$/);
  });

  it('cidrProblem explains what is wrong, and accepts valid entries', () => {
    for (const valid of ['10.0.0.0/8', '10.1.2.3', '0.0.0.0/0', '::1', '::/0', '2001:db8::/32', '::ffff:10.0.0.1', '::ffff:10.0.0.0/104']) {
      assert.equal(cidrProblem(valid), undefined, valid);
    }
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['10.0.0.0/33', /out of range 0-32/],
      ['2001:db8::/129', /out of range 0-128/],
      ['10.0.0.0/', /prefix length "" is not a number/],
      ['10.0.0.0/8/8', /prefix length "8\/8" is not a number/],
      ['10.0.0.0/-1', /not a number/],
      ['010.0.0.1', /not an IPv4 or IPv6 address/],
      ['10.0.0.256', /not an IPv4 or IPv6 address/],
      ['10.0.0', /not an IPv4 or IPv6 address/],
      [' 10.0.0.1', /not an IPv4 or IPv6 address/],
      ['[::1]', /not an IPv4 or IPv6 address/],
      ['1:2:3:4:5:6:7:8:9', /not an IPv4 or IPv6 address/],
      ['::ffff:010.0.0.1', /not an IPv4 or IPv6 address/],
      ['fe80::1%eth0', /zone index/],
      ['example.com', /not an IPv4 or IPv6 address/],
    ];
    for (const [text, problem] of cases) assert.match(cidrProblem(text) ?? 'accepted', problem, JSON.stringify(text));
  });
});
