#include "runtime/paged_cache.h"

#include <algorithm>
#include <cstdint>

#include "base/error.h"

namespace dsv3::runtime {

PagedLatentCache::PagedLatentCache(int64_t n_layers, int64_t latent_dim, int64_t page_tokens, int64_t n_pages,
                                   bool keyed_by_next, model::LatentType type)
    : n_layers_(n_layers), dim_(latent_dim), page_tokens_(page_tokens), n_pages_(n_pages),
      key_tokens_(page_tokens + (keyed_by_next ? 1 : 0)), type_(type) {
  if (n_layers <= 0 || latent_dim <= 0 || page_tokens <= 0 || n_pages <= 0)
    fail("a paged cache needs positive sizes (layers ", n_layers, ", latent ", latent_dim, ", page ", page_tokens,
         ", pages ", n_pages, ")");
  if (n_pages > INT32_MAX) fail("too many cache pages (", n_pages, ")");
  const size_t values = size_t(n_pages) * size_t(n_layers) * size_t(page_tokens) * size_t(latent_dim);
  data_ = std::make_unique_for_overwrite<float[]>(type == model::LatentType::F32 ? values : (values + 1) / 2);
  info_.resize(size_t(n_pages));
  free_.reserve(size_t(n_pages));
  for (int64_t p = n_pages - 1; p >= 0; --p) free_.push_back(int32_t(p));  // page 0 is handed out first
}

uint64_t PagedLatentCache::page_bytes(int64_t n_layers, int64_t latent_dim, int64_t page_tokens,
                                      model::LatentType type) {
  return uint64_t(n_layers) * uint64_t(latent_dim) * uint64_t(page_tokens) * uint64_t(model::latent_type_bytes(type));
}

int64_t PagedLatentCache::pages_for_bytes(int64_t n_layers, int64_t latent_dim, int64_t page_tokens, uint64_t bytes,
                                          model::LatentType type) {
  return std::max<int64_t>(1, int64_t(bytes / page_bytes(n_layers, latent_dim, page_tokens, type)));
}

uint64_t PagedLatentCache::key_of(int32_t parent, uint64_t parent_key, const int32_t* tokens, int64_t n) {
  // FNV-1a over the parent's key and the page's tokens: the key names the whole prefix.
  uint64_t h = 1469598103934665603ull ^ (parent < 0 ? 0x9e3779b97f4a7c15ull : parent_key);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t t = uint32_t(tokens[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (t >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

int32_t PagedLatentCache::allocate() {
  int32_t p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    p = lru_.front();
    lru_.pop_front();
    unregister(p);
  } else {
    return -1;
  }
  info_[size_t(p)].refs = 1;
  ++in_use_;
  return p;
}

void PagedLatentCache::retain(int32_t page) {
  PageInfo& in = info_[size_t(page)];
  if (in.refs == 0) {
    DSV3_CHECK(in.registered, "retaining a free page");
    lru_.erase(in.lru_pos);
    ++in_use_;
  }
  ++in.refs;
}

void PagedLatentCache::release(int32_t page) {
  PageInfo& in = info_[size_t(page)];
  DSV3_CHECK(in.refs > 0, "releasing an unreferenced page");
  if (--in.refs > 0) return;
  --in_use_;
  if (in.registered) {
    in.lru_pos = lru_.insert(lru_.end(), page);
  } else {
    free_.push_back(page);
  }
}

void PagedLatentCache::unregister(int32_t page) {
  PageInfo& in = info_[size_t(page)];
  if (!in.registered) return;
  auto [b, e] = index_.equal_range(in.key);
  for (auto it = b; it != e; ++it)
    if (it->second == page) {
      index_.erase(it);
      break;
    }
  in.registered = false;
  in.mtp_rows = false;
  in.tokens.clear();
}

int32_t PagedLatentCache::lookup(int32_t parent, const int32_t* tokens, bool need_mtp) {
  const uint64_t key = key_of(parent, parent < 0 ? 0 : info_[size_t(parent)].key, tokens, key_tokens_);
  auto [b, e] = index_.equal_range(key);
  for (auto it = b; it != e; ++it) {
    const PageInfo& in = info_[size_t(it->second)];
    if (in.parent == parent && in.parent_key == (parent < 0 ? 0 : info_[size_t(parent)].key) &&
        std::equal(in.tokens.begin(), in.tokens.end(), tokens)) {
      if (need_mtp && !in.mtp_rows) return -1;
      retain(it->second);
      ++hits_;
      return it->second;
    }
  }
  return -1;
}

bool PagedLatentCache::register_page(int32_t page, int32_t parent, const int32_t* tokens, bool mtp_rows) {
  PageInfo& in = info_[size_t(page)];
  DSV3_CHECK(in.refs > 0 && !in.registered, "registering a page that is not exclusively held");
  DSV3_CHECK(parent < 0 || info_[size_t(parent)].registered, "registering a page under an unregistered parent");
  const uint64_t parent_key = parent < 0 ? 0 : info_[size_t(parent)].key;
  const uint64_t key = key_of(parent, parent_key, tokens, key_tokens_);
  auto [b, e] = index_.equal_range(key);
  for (auto it = b; it != e; ++it) {
    const PageInfo& o = info_[size_t(it->second)];
    if (o.parent == parent && o.parent_key == parent_key && std::equal(o.tokens.begin(), o.tokens.end(), tokens))
      return false;
  }
  in.registered = true;
  in.mtp_rows = mtp_rows;
  in.parent = parent;
  in.parent_key = parent_key;
  in.key = key;
  in.tokens.assign(tokens, tokens + key_tokens_);
  index_.emplace(key, page);
  return true;
}

int64_t PagedSequence::attach_prefix(const std::vector<int32_t>& prompt, bool need_mtp) {
  DSV3_CHECK(tokens_.empty(), "attach_prefix on a sequence that already holds tokens");
  const int64_t P = pool_->page_tokens();
  // Full pages before the last token (whose key's next token, if any, is a prompt token too).
  const int64_t usable = (int64_t(prompt.size()) - 1) / P;
  int32_t parent = -1;
  for (int64_t k = 0; k < usable; ++k) {
    const int32_t page = pool_->lookup(parent, prompt.data() + k * P, need_mtp);
    if (page < 0) break;
    pages_.push_back(page);
    tokens_.insert(tokens_.end(), prompt.begin() + k * P, prompt.begin() + (k + 1) * P);
    parent = page;
  }
  registered_ = int64_t(pages_.size());
  mtp_upto_ = need_mtp ? size() : 0;
  return size();
}

bool PagedSequence::reserve(int64_t n) {
  const int64_t P = pool_->page_tokens();
  const int64_t need = (n + P - 1) / P - int64_t(pages_.size());
  if (need <= 0) return true;
  if (need > pool_->pages_available()) return false;
  for (int64_t i = 0; i < need; ++i) {
    const int32_t p = pool_->allocate();
    DSV3_CHECK(p >= 0, "page allocation failed although pages were available");
    pages_.push_back(p);
  }
  return true;
}

void PagedSequence::commit(const int32_t* tokens, int64_t n) {
  const int64_t P = pool_->page_tokens();
  DSV3_CHECK(size() + n <= int64_t(pages_.size()) * P, "committing tokens beyond the reserved pages");
  tokens_.insert(tokens_.end(), tokens, tokens + n);
  publish();
}

void PagedSequence::track_mtp(bool on) {
  track_mtp_ = on;
  publish();
}

void PagedSequence::seal(int64_t n) {
  mtp_upto_ = n;
  publish();
}

void PagedSequence::publish() {
  const int64_t P = pool_->page_tokens(), K = pool_->key_tokens();
  while (publishing_ && registered_ * P + K <= size()) {
    const bool mtp = (registered_ + 1) * P <= mtp_upto_;
    if (track_mtp_ && !mtp) break;
    const int32_t parent = registered_ == 0 ? -1 : pages_[size_t(registered_ - 1)];
    if (!pool_->register_page(pages_[size_t(registered_)], parent, tokens_.data() + registered_ * P, mtp)) {
      publishing_ = false;
      break;
    }
    ++registered_;
  }
}

namespace {

// out[j] = row j of the sequence for j < n: the rows of page k start at first(page k) and
// lie `stride` values apart.
template <class T, class First>
void page_rows(const std::vector<int32_t>& pages, int64_t P, int64_t stride, int64_t n, First first, const T** out) {
  for (int64_t j = 0, k = 0; j < n; ++k) {
    const T* r = first(pages[size_t(k)]);
    for (int64_t i = 0; i < P && j < n; ++i, ++j) out[j] = r + i * stride;
  }
}

}  // namespace

void PagedSequence::rows(int64_t layer, int64_t n, const float** out) {
  if (pool_->type() != model::LatentType::F32) fail("this latent cache holds bf16 rows, not fp32");
  page_rows(pages_, pool_->page_tokens(), pool_->latent_dim(), n,
            [&](int32_t page) { return pool_->row(page, layer, 0); }, out);
}

void PagedSequence::rows_bf16(int64_t layer, int64_t n, const uint16_t** out) {
  if (pool_->type() != model::LatentType::BF16) fail("this latent cache holds fp32 rows, not bf16");
  page_rows(pages_, pool_->page_tokens(), pool_->latent_dim(), n,
            [&](int32_t page) { return pool_->row_bf16(page, layer, 0); }, out);
}

void PagedSequence::clear() {
  // Last pages first: they become the least recently used, so a prefix outlives its tails.
  for (auto it = pages_.rbegin(); it != pages_.rend(); ++it) pool_->release(*it);
  pages_.clear();
  tokens_.clear();
  registered_ = 0;
  publishing_ = true;
  track_mtp_ = false;
  mtp_upto_ = 0;
}

}  // namespace dsv3::runtime
