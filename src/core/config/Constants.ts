/** Fixed values shared across the app: the vision providers we support and their defaults. */

export const visionProviders = ["openai", "anthropic", "gemini"] as const
export type VisionProvider = (typeof visionProviders)[number]

export const defaultVisionProvider: VisionProvider = "gemini"

/** The model each provider uses unless a request names another. */
export const defaultVisionModels: Readonly<Record<VisionProvider, string>> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-3-5-haiku-latest",
  gemini: "gemini-2.0-flash"
}

export const isVisionProvider = (candidate: string): candidate is VisionProvider =>
  (visionProviders as ReadonlyArray<string>).includes(candidate)
