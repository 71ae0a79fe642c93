/**
 * @module variants/policy
 * Who may ask for which `_W_H` sizes. Arbitrary sizes let anyone burn CPU and fill caches with
 * variants nobody else will ask for, so production restricts them: to an allowlist, or to URLs
 * the origin signed (allowlisted sizes then need no signature).
 */
import type { Config } from "../config";
import { AppError } from "../errors";
import type { Size } from "./key";
import { signatureVerifier } from "./sign";

export type SizePolicyName = "open" | "allowlist" | "signed";

export function sizePolicy(config: Config): (path: string, size: Size | null, sig: string | null) => Promise<void> {
  const allowed = new Set(config.allowedSizes.map((s) => `${s.width}x${s.height}`));
  const verify = signatureVerifier(config.signingKeys);
  return async (path, size, sig) => {
    // Full-size requests are always allowed: the stem's original exists whatever the policy.
    if (!size || config.sizePolicy === "open" || allowed.has(`${size.width}x${size.height}`)) return;
    if (config.sizePolicy === "allowlist") {
      throw new AppError(403, "size_not_allowed", `The size ${size.width}x${size.height} is not among the sizes this service produces.`);
    }
    if (!sig) throw new AppError(403, "signature_required", "This size needs a signed URL (?sig=).");
    if (!(await verify(path, sig))) throw new AppError(403, "bad_signature", "The URL signature is not valid.");
  };
}
