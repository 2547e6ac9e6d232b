// esbuild bundles CSS files as text (loader "text").
declare module "*.css" {
  const css: string;
  export default css;
}
