/** The admission stage: policy modules that decide whether a client may connect now. */
export { AccessList, CidrError, cidrProblem, type AccessListName } from './access-list.js';
export { Admission, type AdmissionOptions, type AdmissionResult, type OnLimit, type RefusalReason, type SharedLimits } from './admission.js';
export { canonicalClientIp } from './client-address.js';
export { ConnectionLimits, type ConnectionLimitOptions, type Slot } from './limits.js';
export { RateLimiter, type RateLimitOptions } from './rate-limit.js';
export { Schedule, ScheduleError, scheduleProblem, type ScheduleSpec, type ScheduleWindow, type Weekday } from './schedule.js';
export { WaitQueue, type Ticket, type WaitQueueOptions } from './wait-queue.js';
