// The server's latent KV cache: one pool of fixed-size pages under a memory budget, shared by
// every sequence through per-sequence page tables. Full pages are registered under the
// token prefix they hold, so a later sequence with the same prefix (a system prompt, earlier
// turns of a chat) attaches them instead of recomputing them. Pages nobody uses stay cached
// until their memory is needed; the least recently used goes first.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "model/latent_store.h"

namespace dsv3::runtime {

class PagedLatentCache {
 public:
  //! n_pages pages of page_tokens positions, each holding n_layers latent rows of latent_dim.
  //! keyed_by_next: a page's contents depend on the token after it too (the MTP layer's row of
  //! position i combines hidden state i with token i+1), so pages are registered and found
  //! under their tokens plus the next one.
  //! type: fp32 or BF16 rows (model/latent_store.h).
  PagedLatentCache(int64_t n_layers, int64_t latent_dim, int64_t page_tokens, int64_t n_pages,
                   bool keyed_by_next = false, model::LatentType type = model::LatentType::F32);
  //! How many pages fit in `bytes` (at least one).
  static int64_t pages_for_bytes(int64_t n_layers, int64_t latent_dim, int64_t page_tokens, uint64_t bytes,
                                 model::LatentType type = model::LatentType::F32);
  static uint64_t page_bytes(int64_t n_layers, int64_t latent_dim, int64_t page_tokens,
                             model::LatentType type = model::LatentType::F32);

  int64_t page_tokens() const { return page_tokens_; }
  //! Tokens that name a page: page_tokens, plus the next one when keyed_by_next.
  int64_t key_tokens() const { return key_tokens_; }
  int64_t layers() const { return n_layers_; }
  int64_t latent_dim() const { return dim_; }
  model::LatentType type() const { return type_; }
  int64_t total_pages() const { return n_pages_; }
  int64_t pages_in_use() const { return in_use_; }        // held by at least one sequence
  int64_t pages_cached() const { return int64_t(lru_.size()); }  // unused but kept for reuse
  int64_t pages_available() const { return n_pages_ - in_use_; }  // free or evictable
  uint64_t bytes() const { return uint64_t(n_pages_) * page_bytes(n_layers_, dim_, page_tokens_, type_); }
  uint64_t reuse_hits() const { return hits_; }

  //! Layer-major: each layer's rows of all pages form one block, so the rows attention walks
  //! (one layer, consecutive pages, as a sequence's pages mostly are) lie close together.
  float* row(int32_t page, int64_t layer, int64_t offset) {
    return reinterpret_cast<float*>(data_.get()) + index(page, layer, offset);
  }
  uint16_t* row_bf16(int32_t page, int64_t layer, int64_t offset) {
    return reinterpret_cast<uint16_t*>(data_.get()) + index(page, layer, offset);
  }

  //! A page for exclusive writing (refcount 1), evicting the least recently used cached page
  //! when none is free; -1 when every page is in use.
  int32_t allocate();
  void retain(int32_t page);
  //! Drops one reference; an unreferenced registered page stays cached, others become free.
  void release(int32_t page);

  //! The registered page holding `tokens` (key_tokens() of them) right after `parent` (-1 for
  //! the first page), retained for the caller; -1 if there is none, or if need_mtp and the
  //! page's MTP-layer rows were not computed (its sequence was not drafting).
  int32_t lookup(int32_t parent, const int32_t* tokens, bool need_mtp = false);
  //! Makes a full page findable by lookup(). Its contents must never change afterwards.
  //! False when an identical page is registered already (two sequences computed the same
  //! prefix at once): this one stays private and is freed with its sequence.
  bool register_page(int32_t page, int32_t parent, const int32_t* tokens, bool mtp_rows = false);

 private:
  struct PageInfo {
    int32_t refs = 0;
    bool registered = false;
    bool mtp_rows = false;  // its MTP-layer rows hold data
    int32_t parent = -1;
    uint64_t key = 0, parent_key = 0;
    std::vector<int32_t> tokens;
    std::list<int32_t>::iterator lru_pos;
  };
  static uint64_t key_of(int32_t parent, uint64_t parent_key, const int32_t* tokens, int64_t n);
  void unregister(int32_t page);

  size_t index(int32_t page, int64_t layer, int64_t offset) const {
    return ((size_t(layer) * size_t(n_pages_) + size_t(page)) * size_t(page_tokens_) + size_t(offset)) * size_t(dim_);
  }

  int64_t n_layers_, dim_, page_tokens_, n_pages_, key_tokens_;
  model::LatentType type_;
  std::unique_ptr<float[]> data_;  // F32 or BF16 rows; not zero-filled: pages are touched only when first used
  std::vector<PageInfo> info_;
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;  // cached pages, least recently used first
  std::unordered_multimap<uint64_t, int32_t> index_;
  int64_t in_use_ = 0;
  uint64_t hits_ = 0;
};

//! One sequence's view of the pool: its page table and the tokens whose latents it holds.
class PagedSequence final : public model::LatentStore {
 public:
  explicit PagedSequence(PagedLatentCache& pool) : pool_(&pool) {}
  ~PagedSequence() override { clear(); }
  PagedSequence(const PagedSequence&) = delete;
  PagedSequence& operator=(const PagedSequence&) = delete;

  //! Attaches cached pages for the longest page-aligned prefix of prompt[0 .. n-2] (the last
  //! prompt token is always computed, for its logits). Only on an empty sequence. need_mtp:
  //! only pages whose MTP-layer rows hold data (a drafting sequence attends over them).
  //! Returns the number of tokens whose latents are now present.
  int64_t attach_prefix(const std::vector<int32_t>& prompt, bool need_mtp = false);
  //! Makes sure positions < n have pages; false (nothing allocated) if the pool is exhausted.
  bool reserve(int64_t n);
  //! Records that the next tokens' latents were written (after a forward step); full pages
  //! become reusable by other sequences (with a pool keyed by the next token: once that
  //! token is committed and seal() says the page's rows are final).
  void commit(const int32_t* tokens, int64_t n);
  //! A drafting sequence keeps the MTP layer's rows, which lag the others by a token: its
  //! pages are registered only once seal() says their MTP rows are final. Off again: the
  //! rest of its pages are registered without MTP rows.
  void track_mtp(bool on);
  //! The MTP-layer rows of positions < n are final.
  void seal(int64_t n);
  //! Positions whose MTP-layer rows are final (what seal() or attach_prefix() said).
  int64_t mtp_rows() const { return mtp_upto_; }
  void clear();

  int64_t size() const { return int64_t(tokens_.size()); }
  int64_t pages() const { return int64_t(pages_.size()); }
  model::LatentType type() const override { return pool_->type(); }
  float* row(int64_t layer, int64_t pos) override {
    if (pool_->type() != model::LatentType::F32) fail("this latent cache holds bf16 rows, not fp32");
    const int64_t P = pool_->page_tokens();
    return pool_->row(pages_[size_t(pos / P)], layer, pos % P);
  }
  uint16_t* row_bf16(int64_t layer, int64_t pos) override {
    if (pool_->type() != model::LatentType::BF16) fail("this latent cache holds fp32 rows, not bf16");
    const int64_t P = pool_->page_tokens();
    return pool_->row_bf16(pages_[size_t(pos / P)], layer, pos % P);
  }
  void rows(int64_t layer, int64_t n, const float** out) override;
  void rows_bf16(int64_t layer, int64_t n, const uint16_t** out) override;

 private:
  PagedLatentCache* pool_;
  std::vector<int32_t> pages_;
  std::vector<int32_t> tokens_;
  int64_t registered_ = 0;  // leading pages registered (shared or published)
  bool publishing_ = true;  // false once a page turned out to duplicate another's
  bool track_mtp_ = false;
  int64_t mtp_upto_ = 0;  // MTP-layer rows of positions below it are final

  void publish();
};

}  // namespace dsv3::runtime
