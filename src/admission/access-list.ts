/**
 * The `access.allow` / `access.deny` rule: which client addresses may connect.
 *
 * Deny wins over allow; when `allow` has entries, only addresses matching one pass.
 * IPv4 rules match IPv4 clients whether they arrive as `10.1.2.3` or, on a dual-stack
 * listener, as `::ffff:10.1.2.3`. IPv6 rules match IPv6 clients only, except rules
 * written inside ::ffff:0:0/96, which are read as the IPv4 rule they spell; a broad
 * IPv6 rule such as `::/0` therefore means "every IPv6 client", not IPv4 ones too.
 * An address that cannot be parsed is refused whenever any rule exists (fail closed).
 */
import { parseClientAddress } from './client-address.js';
import { cidrProblem, parseCidr, type CidrRange } from './cidr.js';
import { IpRangeSet } from './ip-range-set.js';
import { TcpProxyError } from '../errors/errors.js';

export { cidrProblem };

export type AccessListName = 'allow' | 'deny';

/** A bad access-list entry, naming the list and index, e.g. `deny[2]: "10.0.0.0/33": ...`. */
export class CidrError extends TcpProxyError {
  constructor(
    readonly list: AccessListName,
    readonly index: number,
    readonly entry: string,
    readonly problem: string,
  ) {
    super('config_invalid', `${list}[${index}]: ${JSON.stringify(entry)}: ${problem}`);
  }
}

export class AccessList {
  readonly #allow: IpRangeSet;
  readonly #deny: IpRangeSet;
  readonly #open: boolean;
  /** Scratch space for the parsed client address; lookups are synchronous, so one per list suffices. */
  readonly #words = new Uint32Array(4);

  private constructor(allow: IpRangeSet, deny: IpRangeSet) {
    this.#allow = allow;
    this.#deny = deny;
    this.#open = allow.isEmpty && deny.isEmpty;
  }

  /** Throws CidrError on the first bad entry. Missing or empty lists impose nothing. */
  static parse(allow: readonly string[] | undefined, deny: readonly string[] | undefined): AccessList {
    return new AccessList(IpRangeSet.from(parseList('allow', allow)), IpRangeSet.from(parseList('deny', deny)));
  }

  /** True when neither list has entries: the rule admits everyone and need not run. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** `ip` as Node.js reports it (`socket.remoteAddress`): IPv4, IPv6, or IPv4-mapped IPv6. */
  allows(ip: string): boolean {
    if (this.#open) return true;
    const family = parseClientAddress(ip, this.#words);
    if (family === undefined) return false;
    if (this.#deny.contains(family, this.#words)) return false;
    return this.#allow.isEmpty || this.#allow.contains(family, this.#words);
  }
}

function parseList(list: AccessListName, entries: readonly string[] | undefined): CidrRange[] {
  const ranges: CidrRange[] = [];
  entries?.forEach((entry, index) => {
    const parsed = parseCidr(entry);
    if ('problem' in parsed) throw new CidrError(list, index, entry, parsed.problem);
    ranges.push(parsed);
  });
  return ranges;
}
