//! Pingora's `Storage` for [`MokaStore`]: lookups, misses written into the store, metadata
//! updates and purges, as handle types Pingora's cache drives.

use super::*;

struct MemoryHit {
    body: Bytes,
    done: bool,
    range: (usize, usize),
}

#[async_trait]
impl HandleHit for MemoryHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.body.slice(self.range.0..self.range.1)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        if start >= self.body.len() {
            return Error::e_explain(InternalError, "seek start past the end of the body");
        }
        let end = end.map_or(self.body.len(), |e| e.min(self.body.len()));
        self.range = (start, end.max(start));
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.body.len()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

struct MemoryMiss {
    store: &'static MokaStore,
    key: HashBinary,
    meta: StoredMeta,
    info: Arc<EntryInfo>,
    keep_until: SystemTime,
    body: Vec<u8>,
}

#[async_trait]
impl HandleMiss for MemoryMiss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let size = self.body.len();
        let entry = Entry {
            meta: self.meta,
            body: Bytes::from(self.body),
            info: self.info,
            keep_until: self.keep_until,
        };
        self.store.insert(self.key, entry);
        Ok(MissFinishType::Created(size))
    }
}

#[async_trait]
impl Storage for MokaStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = crate::key_hash::combined(key);
        let Some((entry, ban)) = self.find(key, hash) else {
            super::coalescing::note_miss(hash);
            return Ok(None);
        };
        super::coalescing::note_found();
        let mut meta = entry.meta.to_cache_meta()?;
        if let BanOutcome::ExpiredAt(at) = ban {
            if meta.fresh_until() > at {
                meta.expire_at(at);
            }
        }
        let len = entry.body.len();
        let hit = MemoryHit {
            body: entry.body.clone(),
            done: false,
            range: (0, len),
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (tags, fetched_at, listing) = Self::entry_tags(key, meta);
        let info = EntryInfo {
            primary: key.primary_bin(),
            tags,
            fetched_at,
            varied: meta.variance().map(|_| meta.provenance()),
            listing,
        };
        Ok(Box::new(MemoryMiss {
            store: self,
            key: crate::key_hash::combined(key),
            meta: StoredMeta::new(meta)?,
            info: Arc::new(info),
            keep_until: self.keep_until(meta),
            body: Vec::new(),
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Ok(
            match self.cache.remove(&crate::key_hash::combined(target.key())) {
                Some(_) => PurgeOutcome::Purged(None),
                None => PurgeOutcome::NotFound,
            },
        )
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = crate::key_hash::combined(key);
        let Some(old) = self.cache.get(&hash) else {
            return Ok(false);
        };
        // A revalidation is a fresh fetch: purges made before it started no longer apply, and
        // one made while it was in flight still does.
        let fetched_at = key
            .extensions
            .get::<PurgeTagSlot>()
            .map_or_else(SystemTime::now, |slot| slot.fetch_started);
        let info = EntryInfo {
            primary: old.info.primary,
            tags: old.info.tags.clone(),
            fetched_at,
            varied: meta.variance().map(|_| meta.provenance()),
            listing: old.info.listing.clone(),
        };
        let entry = Entry {
            meta: StoredMeta::new(meta)?,
            body: old.body.clone(),
            info: Arc::new(info),
            keep_until: self.keep_until(meta),
        };
        self.insert(hash, entry);
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}
