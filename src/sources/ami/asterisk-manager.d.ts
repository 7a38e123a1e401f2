// asterisk-manager 0.2.0 ships no types; src/sources/ami/source.ts declares the surface it uses.
declare module 'asterisk-manager' {
  const Manager: unknown;
  export default Manager;
}
