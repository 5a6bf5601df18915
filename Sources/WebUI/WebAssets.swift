/// The UI's page, styles and script, embedded at build time from `assets/` by the AssetEmbedder
/// plugin (`indexHtml`, `appCss`, `appJs`).
public enum WebAssets {}
