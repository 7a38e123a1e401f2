// The template engine shared by the webhook sink and the screen pop (docs/templates.md): compile
// each configured template once at start (a TemplateError lists every problem), then per event
// compute templateVars(event) once and render every template of every sink from it.
export { TemplateError, type TemplateProblem } from './errors.js';
export { isKnownName, KNOWN_NAMES, templateVars, WORLDSMART_KEYS, CRM_VAR_PREFIX, type KnownName, type TemplateVars } from './vars.js';
export { compileText, referencedNames, type CompiledTemplate } from './text.js';
export { appendParams, compileUrl, encodeComponent, UrlRenderError, type CompiledUrl } from './url.js';
export { compileHeader, encodeExtValue, encodeHeaderValue, isHeaderName } from './header.js';
export { compileBody, type BodyFormat, type BodyValue, type CompiledBody } from './body.js';
export { compileParams, PARAM_PRESETS, TENCENT_PARAMS, type CompiledParams, type ParamSpec } from './params.js';
