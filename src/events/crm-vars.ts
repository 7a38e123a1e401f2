// The channel variables through which a dialplan (and the bridge's own Originate) hands values
// to the CRM side. They live in one place because three parts must agree on them: the normalizer
// reads them (VarSet events, and at resync src/normalizer/missed-vars.ts), click-to-call sets
// them (src/api/click-to-call.ts), and templates render the exported ones (src/template/vars.ts).
// The names follow the OMniLeads convention, which existing dialplans already use.

/** CRM variables are the channel variables named Omlcrm… (case-sensitive, like the contract's `vars` keys). */
export const CRM_VAR_PREFIX = 'Omlcrm';

/**
 * The whole name of a CRM variable, as the contract's `vars` keys must match it
 * (schema/events.v1.json): the prefix, then ASCII letters, digits and `_`. A dialplan variable
 * with the prefix but another name (`Omlcrm x`, `Omlcrm-id`, `Omlcrmé`) is dropped.
 */
export const CRM_VAR_NAME = /^Omlcrm[A-Za-z0-9_]*$/;

/** A name the contract's `vars` can carry. */
export function isCrmVarName(name: string): boolean {
  return CRM_VAR_NAME.test(name);
}

/**
 * The `&`-separated list of the Omlcrm… variables a call exports: only those listed reach the
 * events' `vars`, so a dialplan can keep working values to itself.
 */
export const EXPORT_LIST = 'OMLCUSTOMDIALPLANVARS';

/**
 * Set by the bridge's own Originate (click-to-call) on the channel it creates. Asterisk sets an
 * Originate's variables at channel creation, so the VarSet arrives right after the first
 * Newchannel, before the call is announced: every event of the call, call.started included,
 * carries it as `origin`.
 */
export const ORIGIN_VARIABLE = 'CRMBRIDGE_ORIGIN';

/** A variable's name as the CRM knows it: inherited variables are set as _NAME / __NAME. */
export function uninherited(name: string): string {
  return name.replace(/^_{1,2}/, '');
}

/**
 * The CRM variable names an export list names, in its order, each once. A name with the prefix
 * that the contract cannot carry is left out and handed to `onInvalid`.
 */
export function exportedNames(list: string, onInvalid?: (name: string) => void): string[] {
  const names = new Set<string>();
  for (const raw of list.split('&')) {
    const n = uninherited(raw.trim());
    if (!n.startsWith(CRM_VAR_PREFIX)) continue;
    if (isCrmVarName(n)) names.add(n);
    else onInvalid?.(n);
  }
  return [...names];
}
