#include "common/thumbnailloader.h"

#include "image/imageprobe.h"

#include <QMetaObject>

#include <climits>
#include <exception>
#include <utility>

namespace ifs {

ThumbnailLoader::ThumbnailLoader(QObject *parent)
    : QObject(parent)
{
    m_pool.setObjectName(QStringLiteral("ThumbnailLoader"));
    m_pool.setMaxThreadCount(kDefaultThreadCount);
    // Threads that sit idle for a while go away; scrolling again starts them in microseconds.
    m_pool.setExpiryTimeout(10000);
}

ThumbnailLoader::~ThumbnailLoader()
{
    // The jobs post their result to `this`: they must be done before it goes away. At most
    // threadCount() + 1 of them exist, each one image.
    m_queue.clear();
    m_queued.clear();
    m_pool.waitForDone();
}

void ThumbnailLoader::setThumbnailSize(int pixels)
{
    pixels = qMax(16, pixels);
    if (pixels == m_thumbnailSize)
        return;
    m_thumbnailSize = pixels;
    clear();
}

void ThumbnailLoader::setThreadCount(int threads)
{
    m_pool.setMaxThreadCount(qMax(1, threads));
    dispatch();
}

int ThumbnailLoader::threadCount() const
{
    return m_pool.maxThreadCount();
}

void ThumbnailLoader::request(const QString &path, int priority)
{
    if (path.isEmpty() || m_inFlight.contains(path))
        return;
    const auto queued = m_queued.constFind(path);
    if (queued != m_queued.cend()) {
        if ((*queued)->priority >= priority)
            return;
        m_queue.erase(*queued);
        m_queued.erase(queued);
    } else {
        ++m_requestCount;
    }
    enqueue(path, priority);
    dispatch();
}

void ThumbnailLoader::prioritize(const QStringList &paths)
{
    const QHash<QString, Queue::iterator> wasQueued = std::exchange(m_queued, {});
    m_queue.clear();
    // Above anything request() is normally given, in list order.
    constexpr int kPrioritized = INT_MAX / 2;
    for (const QString &path : paths) {
        if (path.isEmpty() || m_inFlight.contains(path) || m_queued.contains(path))
            continue;
        if (!wasQueued.contains(path))
            ++m_requestCount;
        enqueue(path, kPrioritized);
    }
    dispatch();
}

void ThumbnailLoader::cancel(const QString &path)
{
    const auto queued = m_queued.constFind(path);
    if (queued == m_queued.cend())
        return;
    m_queue.erase(*queued);
    m_queued.erase(queued);
}

void ThumbnailLoader::clear()
{
    m_queue.clear();
    m_queued.clear();
    m_inFlight.clear();
    ++m_generation;
}

int ThumbnailLoader::pendingCount() const
{
    return int(m_queued.size() + m_inFlight.size());
}

bool ThumbnailLoader::isPending(const QString &path) const
{
    return m_queued.contains(path) || m_inFlight.contains(path);
}

void ThumbnailLoader::enqueue(const QString &path, int priority)
{
    const auto [it, inserted] = m_queue.insert(Entry{priority, m_sequence++, path});
    Q_ASSERT(inserted);
    m_queued.insert(path, it);
}

void ThumbnailLoader::dispatch()
{
    // One job more than threads keeps the pool busy while a result travels back to this thread.
    const int maxRunning = m_pool.maxThreadCount() + 1;
    while (m_running < maxRunning && !m_queue.empty()) {
        const QString path = m_queue.begin()->path;
        m_queued.remove(path);
        m_queue.erase(m_queue.begin());
        m_inFlight.insert(path);
        ++m_running;
        ++m_decodeCount;

        const QSize size(m_thumbnailSize, m_thumbnailSize);
        const uint64_t generation = m_generation;
        m_pool.start([this, path, size, generation] {
            QImage image;
            QString error;
            try {
                Result<QImage> decoded = loadImageRgb(path, size);
                if (decoded.ok())
                    image = std::move(decoded).value();
                else
                    error = decoded.errorMessage();
            } catch (const std::exception &e) {
                error
                    = tr("Cannot read image “%1”: %2").arg(path, QString::fromLocal8Bit(e.what()));
            } catch (...) {
                error = tr("Cannot read image “%1”: unknown error").arg(path);
            }
            if (error.isEmpty() && image.isNull())
                error = tr("Cannot read image “%1”: no pixels decoded").arg(path);
            // RGB32 is what the raster paint engine draws without converting.
            if (!image.isNull() && image.format() != QImage::Format_RGB32)
                image.convertTo(QImage::Format_RGB32);
            QMetaObject::invokeMethod(
                this,
                [this, path, generation, image = std::move(image), error] {
                    finish(path, generation, image, error);
                },
                Qt::QueuedConnection);
        });
    }
}

void ThumbnailLoader::finish(const QString &path, uint64_t generation, const QImage &image,
                             const QString &error)
{
    --m_running;
    if (generation == m_generation) {
        m_inFlight.remove(path);
        if (error.isEmpty())
            Q_EMIT thumbnailReady(path, image);
        else
            Q_EMIT thumbnailFailed(path, error);
    }
    dispatch();
}

} // namespace ifs
