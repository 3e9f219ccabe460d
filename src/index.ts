/**
 * The package's public API: the types a filter plugin is written against
 * (see "Writing a plugin" in the README and examples/plugins/).
 */
export type { Direction, Filter, FilterContext, FilterFactory, OptionsProblem, OptionsValidator, Push } from './filters/filter.js';
