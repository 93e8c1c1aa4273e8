/** Hugging Face hub downloads into the standard hub cache (shared with huggingface_hub). */
export { DownloadError, IntegrityError, OfflineError, type HubFileRef } from './errors.js';
export { offlineError } from './offline.js';
export { resolveHubSettings, resolveNetworkSettings, type HubOptions, type HubSettings, type NetworkOptions, type NetworkSettings } from './settings.js';
export {
  downloadFile,
  downloadFileInfo,
  downloadFiles,
  resolveCachedFile,
  type CachedFileRequest,
  type DownloadFileRequest,
  type DownloadOptions,
  type DownloadedFile,
} from './download.js';
export type { DownloadProgress, ProgressCallback } from './progress.js';
export {
  listCache,
  removeFromCache,
  verifyCache,
  type BlobCheck,
  type CacheListing,
  type CachedFileEntry,
  type CachedRepoEntry,
  type CachedRevisionEntry,
  type RemoveResult,
  type VerifyOptions,
  type VerifyReport,
} from './cache.js';
