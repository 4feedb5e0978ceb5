#pragma once

#include <QHash>
#include <QImage>
#include <QObject>
#include <QSet>
#include <QString>
#include <QStringList>
#include <QThreadPool>

#include <cstdint>
#include <set>

namespace ifs {

/// Decodes thumbnails on a small private thread pool, most wanted first.
///
/// The loader lives in the GUI thread: requests, cancellation and results all happen there. Only
/// threadCount() + 1 decodes are handed to the pool at a time; every other request waits in a
/// priority queue here, so cancelling it costs nothing and what scrolled away is never decoded
/// (Gwenview's thumbnail provider works the same way). Requests are de-duplicated by path.
class ThumbnailLoader : public QObject
{
    Q_OBJECT

public:
    static constexpr int kDefaultThumbnailSize = 128;
    static constexpr int kDefaultThreadCount = 2;

    explicit ThumbnailLoader(QObject *parent = nullptr);
    ~ThumbnailLoader() override;

    /// Longest side of the decoded thumbnails, in device pixels. Changing it drops every queued
    /// request and the results of decodes already running.
    void setThumbnailSize(int pixels);
    int thumbnailSize() const { return m_thumbnailSize; }

    void setThreadCount(int threads);
    int threadCount() const;

    /// Queues a decode of `path` unless it is already queued or being decoded; a higher
    /// `priority` is decoded first, equal priorities in request order. Re-requesting a queued
    /// path with a higher priority moves it up.
    void request(const QString &path, int priority = 0);
    /// Puts `paths` ahead of everything else, first one first, and cancels the queued requests
    /// that are not in the list (call it with the visible paths, then the prefetch ones, after
    /// scrolling settles). Decodes already running finish and are delivered.
    void prioritize(const QStringList &paths);
    /// Drops a queued request (a running decode still delivers).
    void cancel(const QString &path);
    /// Drops every queued request and ignores the results of the decodes still running.
    void clear();

    /// Requests queued or being decoded (for the current thumbnail size).
    int pendingCount() const;
    bool isPending(const QString &path) const;
    /// Distinct requests accepted since construction (duplicates not counted).
    int64_t requestCount() const { return m_requestCount; }
    /// Decodes started since construction.
    int64_t decodeCount() const { return m_decodeCount; }
    /// Decodes handed to the pool whose result has not come back to this thread yet, delivered
    /// or dropped (any generation): at 0 nothing more can arrive.
    int runningCount() const { return m_running; }

Q_SIGNALS:
    /// An RGB thumbnail whose longest side is at most thumbnailSize(). Emitted in the GUI thread.
    void thumbnailReady(const QString &path, const QImage &image);
    /// The file could not be decoded; `message` names the file and the reason.
    void thumbnailFailed(const QString &path, const QString &message);

private:
    struct Entry
    {
        int priority;
        uint64_t sequence;
        QString path;

        bool operator<(const Entry &other) const
        {
            if (priority != other.priority)
                return priority > other.priority; // highest first
            return sequence < other.sequence;
        }
    };
    using Queue = std::set<Entry>;

    void enqueue(const QString &path, int priority);
    void dispatch();
    void finish(const QString &path, uint64_t generation, const QImage &image,
                const QString &error);

    QThreadPool m_pool;
    Queue m_queue;
    QHash<QString, Queue::iterator> m_queued;
    QSet<QString> m_inFlight; // decoding for the current generation
    int m_running = 0; // jobs handed to the pool, any generation
    uint64_t m_generation = 0; // bumped by clear(): older results are dropped
    uint64_t m_sequence = 0;
    int m_thumbnailSize = kDefaultThumbnailSize;
    int64_t m_requestCount = 0;
    int64_t m_decodeCount = 0;
};

} // namespace ifs
