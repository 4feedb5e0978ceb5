// Two images side by side, decoded by a small ThumbnailLoader of its own.

#include "datasets/duplicatepairview.h"

#include "common/thumbnailloader.h"

#include <QGridLayout>
#include <QImage>
#include <QLabel>
#include <QPixmap>

namespace ifs {

namespace {

constexpr int kImageSide = 192;

} // namespace

DuplicatePairView::DuplicatePairView(QWidget *parent)
    : QWidget(parent)
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("duplicatePairView"));
    m_loader->setThumbnailSize(kImageSide);
    auto layout = new QGridLayout(this);
    for (int i = 0; i < 2; ++i) {
        m_images[i] = new QLabel(this);
        m_images[i]->setAlignment(Qt::AlignCenter);
        m_images[i]->setMinimumSize(kImageSide / 2, kImageSide / 2);
        m_images[i]->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
        m_captions[i] = new QLabel(this);
        m_captions[i]->setAlignment(Qt::AlignCenter);
        m_captions[i]->setWordWrap(true);
        m_captions[i]->setTextInteractionFlags(Qt::TextSelectableByMouse);
        layout->addWidget(m_images[i], 0, i);
        layout->addWidget(m_captions[i], 1, i);
    }
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this,
            [this](const QString &path, const QImage &image) { place(path, image, {}); });
    connect(m_loader, &ThumbnailLoader::thumbnailFailed, this,
            [this](const QString &path, const QString &message) { place(path, {}, message); });
}

DuplicatePairView::~DuplicatePairView() = default;

void DuplicatePairView::showPair(const QString &path, const QString &caption,
                                 const QString &otherPath, const QString &otherCaption)
{
    clear();
    m_paths[0] = path;
    m_paths[1] = otherPath;
    m_captions[0]->setText(caption);
    m_captions[1]->setText(otherCaption);
    for (int i = 0; i < 2; ++i) {
        m_images[i]->setText(tr("Loading…"));
        m_loader->request(m_paths[i]);
    }
}

void DuplicatePairView::clear()
{
    m_loader->clear();
    for (int i = 0; i < 2; ++i) {
        m_paths[i].clear();
        m_shown[i] = false;
        m_images[i]->clear();
        m_captions[i]->clear();
    }
}

void DuplicatePairView::place(const QString &path, const QImage &image, const QString &error)
{
    for (int i = 0; i < 2; ++i) {
        if (m_paths[i] != path || m_shown[i])
            continue;
        if (image.isNull()) {
            m_images[i]->setText(error);
        } else {
            // Small images (28 × 28) scaled up without smoothing, so that pixels stay visible.
            const QImage shown = std::max(image.width(), image.height()) < kImageSide
                ? image.scaled(kImageSide, kImageSide, Qt::KeepAspectRatio, Qt::FastTransformation)
                : image;
            m_images[i]->setPixmap(QPixmap::fromImage(shown));
        }
        m_shown[i] = true;
    }
    if (isComplete())
        Q_EMIT pairShown();
}

} // namespace ifs
