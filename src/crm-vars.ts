// The channel variables through which a dialplan (and the bridge's own Originate) hands values
// to the CRM side. They live in one place because three parts must agree on them: the normalizer
// reads them (VarSet events, and at resync src/normalizer/missed-vars.ts), click-to-call sets
// them (src/api/click-to-call.ts), and templates render the exported ones (src/template/vars.ts).
// The names follow the OMniLeads convention, which existing dialplans already use.

/** CRM variables are the channel variables named Omlcrm… (case-sensitive, like the contract's `vars` keys). */
export const CRM_VAR_PREFIX = 'Omlcrm';

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

/** The CRM variable names an export list names, in its order, each once. */
export function exportedNames(list: string): string[] {
  return [...new Set(list.split('&').map((n) => uninherited(n.trim())).filter((n) => n.startsWith(CRM_VAR_PREFIX)))];
}
