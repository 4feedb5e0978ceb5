#include "datasets/thumbnailview.h"

#include "datasets/thumbnailmodel.h"

#include <QItemSelectionModel>
#include <QPainter>
#include <QPainterPath>
#include <QPixmapCache>
#include <QScrollBar>
#include <QStyledItemDelegate>
#include <QtMath>

#include <algorithm>

namespace ifs {

namespace {

constexpr int kPadding = 6; // inside a tile, around the thumbnail and the name
constexpr int kTextGap = 4; // between thumbnail and name
constexpr int kSpacing = 4; // between tiles
constexpr qreal kRadius = 6; // tile corners

QColor withAlpha(QColor color, int alpha)
{
    color.setAlpha(alpha);
    return color;
}

} // namespace

/// Paints a rounded tile: the thumbnail centred in a square box, the file name elided below.
class ThumbnailView::Delegate : public QStyledItemDelegate
{
public:
    explicit Delegate(QObject *parent)
        : QStyledItemDelegate(parent)
    { }

    void setThumbnailSize(int pixels) { m_thumbnailSize = pixels; }

    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &) const override
    {
        const int textHeight = option.fontMetrics.height();
        return {m_thumbnailSize + 2 * kPadding,
                kPadding + m_thumbnailSize + kTextGap + textHeight + kPadding};
    }

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override
    {
        painter->save();
        painter->setRenderHint(QPainter::Antialiasing);

        const QPalette &palette = option.palette;
        const bool selected = option.state & QStyle::State_Selected;
        const bool hovered = option.state & QStyle::State_MouseOver;
        const bool active = option.state & QStyle::State_Active;
        const bool focused = option.state & QStyle::State_HasFocus;
        const QColor highlight
            = palette.color(active ? QPalette::Active : QPalette::Inactive, QPalette::Highlight);
        const QColor text = palette.color(QPalette::Text);

        // The tile.
        const QRectF tile = QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5);
        if (selected) {
            painter->setPen(QPen(highlight, 1.5));
            painter->setBrush(withAlpha(highlight, active ? 70 : 45));
            painter->drawRoundedRect(tile.adjusted(0.5, 0.5, -0.5, -0.5), kRadius, kRadius);
        } else if (hovered || focused) {
            painter->setPen(focused ? QPen(withAlpha(highlight, 160), 1) : Qt::NoPen);
            painter->setBrush(withAlpha(text, hovered ? 20 : 0));
            painter->drawRoundedRect(tile, kRadius, kRadius);
        }

        // The thumbnail box, square, centred horizontally.
        const int boxSize = m_thumbnailSize;
        const QRect box(option.rect.x() + (option.rect.width() - boxSize) / 2,
                        option.rect.y() + kPadding, boxSize, boxSize);
        const auto state = ThumbnailModel::State(index.data(ThumbnailModel::StateRole).toInt());
        const QPixmap decoration = index.data(Qt::DecorationRole).value<QPixmap>();
        switch (state) {
        case ThumbnailModel::Ready:
            paintThumbnail(painter, box, decoration, text);
            break;
        case ThumbnailModel::Pending:
            painter->setPen(Qt::NoPen);
            painter->setBrush(withAlpha(text, 14));
            painter->drawRoundedRect(QRectF(box).adjusted(2, 2, -2, -2), 4, 4);
            paintGlyph(painter, box, decoration);
            break;
        case ThumbnailModel::Failed: {
            const QColor red(210, 70, 70);
            painter->setPen(QPen(withAlpha(red, 110), 1));
            painter->setBrush(withAlpha(red, 28));
            painter->drawRoundedRect(QRectF(box).adjusted(2.5, 2.5, -2.5, -2.5), 4, 4);
            paintGlyph(painter, box, decoration);
            break;
        }
        }

        // The file name.
        const QRect textRect(option.rect.x() + kPadding, box.bottom() + 1 + kTextGap,
                             option.rect.width() - 2 * kPadding, option.fontMetrics.height());
        const QString name = option.fontMetrics.elidedText(index.data(Qt::DisplayRole).toString(),
                                                           Qt::ElideMiddle, textRect.width());
        painter->setFont(option.font);
        painter->setPen(state == ThumbnailModel::Failed && !selected
                            ? QColor(200, 60, 60)
                            : (selected && active ? palette.color(QPalette::Text) : text));
        painter->drawText(textRect, Qt::AlignHCenter | Qt::AlignVCenter, name);

        painter->restore();
    }

private:
    // Fits the thumbnail into the box (scaling up too: tiny dataset images like CIFAR's 32x32
    // would be lost otherwise), keeping the aspect ratio.
    void paintThumbnail(QPainter *painter, const QRect &box, const QPixmap &pixmap,
                        const QColor &text) const
    {
        if (pixmap.isNull())
            return;
        const qreal dpr = painter->device() ? painter->device()->devicePixelRatioF() : 1.0;
        const QSizeF source = QSizeF(pixmap.size()) / pixmap.devicePixelRatioF();
        const QSizeF fitted = source.scaled(QSizeF(box.size()), Qt::KeepAspectRatio);
        const QSize logical(qMax(1, qRound(fitted.width())), qMax(1, qRound(fitted.height())));
        const QRect target(box.x() + (box.width() - logical.width()) / 2,
                           box.y() + (box.height() - logical.height()) / 2, logical.width(),
                           logical.height());
        painter->drawPixmap(target, scaledPixmap(pixmap, logical * dpr, dpr));
        // A hairline keeps white images from dissolving into a light background.
        painter->setPen(QPen(withAlpha(text, 40), 1));
        painter->setBrush(Qt::NoBrush);
        painter->setRenderHint(QPainter::Antialiasing, false);
        painter->drawRect(target.adjusted(0, 0, -1, -1));
        painter->setRenderHint(QPainter::Antialiasing, true);
    }

    // Scaling on every paint is wasted work: keep the scaled copies in QPixmapCache.
    static QPixmap scaledPixmap(const QPixmap &pixmap, const QSize &deviceSize, qreal dpr)
    {
        if (pixmap.size() == deviceSize)
            return pixmap;
        const QString key = QStringLiteral("ifs-thumb-%1-%2x%3")
                                .arg(pixmap.cacheKey())
                                .arg(deviceSize.width())
                                .arg(deviceSize.height());
        QPixmap scaled;
        if (!QPixmapCache::find(key, &scaled)) {
            // Enlarging by 2x or more: show the real pixels, as an image viewer does when zoomed.
            const bool enlarge = deviceSize.width() >= 2 * pixmap.width();
            scaled = pixmap.scaled(deviceSize, Qt::IgnoreAspectRatio,
                                   enlarge ? Qt::FastTransformation : Qt::SmoothTransformation);
            QPixmapCache::insert(key, scaled);
        }
        scaled.setDevicePixelRatio(dpr);
        return scaled;
    }

    static void paintGlyph(QPainter *painter, const QRect &box, const QPixmap &glyph)
    {
        if (glyph.isNull())
            return;
        const int side = qBound(16, box.width() * 2 / 5, glyph.width());
        const QRect target(box.x() + (box.width() - side) / 2, box.y() + (box.height() - side) / 2,
                           side, side);
        painter->setRenderHint(QPainter::SmoothPixmapTransform);
        painter->drawPixmap(target, glyph);
    }

    int m_thumbnailSize = kDefaultThumbnailSize;
};

ThumbnailView::ThumbnailView(QWidget *parent)
    : QListView(parent)
    , m_delegate(new Delegate(this))
{
    setViewMode(IconMode);
    setMovement(Static);
    setFlow(LeftToRight);
    setWrapping(true);
    setResizeMode(Adjust);
    setUniformItemSizes(true);
    setSpacing(kSpacing);
    setSelectionMode(ExtendedSelection);
    setSelectionRectVisible(true);
    setEditTriggers(NoEditTriggers);
    setDragEnabled(false);
    setVerticalScrollMode(ScrollPerPixel);
    setMouseTracking(true);
    viewport()->setAttribute(Qt::WA_Hover);
    setItemDelegate(m_delegate);
    setThumbnailSize(kDefaultThumbnailSize);

    m_settleTimer.setSingleShot(true);
    m_settleTimer.setInterval(kSettleMs);
    connect(&m_settleTimer, &QTimer::timeout, this, &ThumbnailView::prioritizeVisible);
    connect(this, &QAbstractItemView::activated, this, [this](const QModelIndex &index) {
        const int sampleRow = sampleRowOf(index);
        if (sampleRow >= 0)
            Q_EMIT sampleActivated(sampleRow);
    });
}

ThumbnailView::~ThumbnailView() = default;

void ThumbnailView::setModel(QAbstractItemModel *model)
{
    if (model == this->model())
        return;
    for (const QMetaObject::Connection &connection : std::as_const(m_modelConnections))
        disconnect(connection);
    m_modelConnections.clear();
    QListView::setModel(model);
    m_thumbnailModel = qobject_cast<ThumbnailModel *>(model);
    if (m_thumbnailModel)
        m_thumbnailModel->setThumbnailSize(qCeil(m_thumbnailSize * devicePixelRatioF()));
    if (model) {
        for (auto signal : {&QAbstractItemModel::rowsInserted, &QAbstractItemModel::rowsRemoved}) {
            m_modelConnections.append(
                connect(model, signal, this, &ThumbnailView::scheduleVisibleUpdate));
        }
        m_modelConnections.append(connect(model, &QAbstractItemModel::layoutChanged, this,
                                          &ThumbnailView::scheduleVisibleUpdate));
    }
    updateCurrentSample(sampleRowOf(currentIndex()));
    scheduleVisibleUpdate();
}

void ThumbnailView::setThumbnailSize(int pixels)
{
    pixels = qBound(kMinThumbnailSize, pixels, kMaxThumbnailSize);
    if (pixels == m_thumbnailSize && iconSize() == QSize(pixels, pixels))
        return;
    // Keep the current item in view, or else the first visible one, across the new layout.
    if (m_anchorRow < 0 && model() && isVisible()) {
        const QModelIndex current = currentIndex();
        const auto [first, last] = visibleRowRange();
        m_anchorRow = current.isValid() && current.row() >= first && current.row() <= last
            ? current.row()
            : first;
        m_anchorIsCurrent = m_anchorRow >= 0 && current.isValid() && m_anchorRow == current.row();
        if (m_anchorRow >= 0)
            QTimer::singleShot(0, this, &ThumbnailView::restoreAnchor);
    }
    m_thumbnailSize = pixels;
    m_delegate->setThumbnailSize(pixels);
    // A new icon size lays the items out again (once per event loop pass however often it is
    // called: a slider being dragged stays fluid).
    setIconSize(QSize(pixels, pixels));
    if (m_thumbnailModel)
        m_thumbnailModel->setThumbnailSize(qCeil(pixels * devicePixelRatioF()));
    scheduleVisibleUpdate();
}

void ThumbnailView::restoreAnchor()
{
    const int row = std::exchange(m_anchorRow, -1);
    if (!model() || row < 0 || row >= model()->rowCount(rootIndex()))
        return;
    executeDelayedItemsLayout();
    scrollTo(model()->index(row, 0, rootIndex()),
             m_anchorIsCurrent ? EnsureVisible : PositionAtTop);
}

void ThumbnailView::setEmptyText(const QString &text)
{
    m_emptyText = text;
    viewport()->update();
}

bool ThumbnailView::setCurrentSampleRow(int sampleRow)
{
    if (!m_thumbnailModel)
        return false;
    const QModelIndex index = m_thumbnailModel->indexForSampleRow(sampleRow);
    if (!index.isValid())
        return false;
    selectionModel()->setCurrentIndex(index, QItemSelectionModel::ClearAndSelect);
    scrollTo(index);
    return true;
}

QList<int> ThumbnailView::selectedSampleRows() const
{
    QModelIndexList indexes
        = selectionModel() ? selectionModel()->selectedIndexes() : QModelIndexList();
    std::sort(indexes.begin(), indexes.end());
    QList<int> rows;
    rows.reserve(indexes.size());
    for (const QModelIndex &index : std::as_const(indexes)) {
        const int sampleRow = sampleRowOf(index);
        if (sampleRow >= 0)
            rows.append(sampleRow);
    }
    return rows;
}

std::pair<int, int> ThumbnailView::visibleRowRange()
{
    if (!model() || model()->rowCount(rootIndex()) == 0)
        return {-1, -1};
    executeDelayedItemsLayout();
    // Probe the viewport on a grid finer than a tile: robust to the gaps between tiles and to
    // a last line that is not full. Items flow in reading order, so [min, max] is contiguous.
    const QRect area = viewport()->rect();
    QStyleOptionViewItem option;
    initViewItemOption(&option);
    const QSize tile = m_delegate->sizeHint(option, {});
    const int step = qMax(8, qMin(tile.width(), tile.height()) / 2);
    int first = -1;
    int last = -1;
    for (int y = area.top(); y <= area.bottom() + step - 1; y += step) {
        const int py = qMin(y, area.bottom());
        for (int x = area.left(); x <= area.right() + step - 1; x += step) {
            const QModelIndex index = indexAt(QPoint(qMin(x, area.right()), py));
            if (!index.isValid())
                continue;
            first = first < 0 ? index.row() : qMin(first, index.row());
            last = qMax(last, index.row());
        }
    }
    return {first, last};
}

void ThumbnailView::reset()
{
    QListView::reset();
    updateCurrentSample(-1);
    scheduleVisibleUpdate();
}

void ThumbnailView::currentChanged(const QModelIndex &current, const QModelIndex &previous)
{
    QListView::currentChanged(current, previous);
    updateCurrentSample(sampleRowOf(current));
}

void ThumbnailView::scrollContentsBy(int dx, int dy)
{
    QListView::scrollContentsBy(dx, dy);
    const int value = verticalScrollBar()->value();
    if (value != m_lastScrollValue)
        m_scrollingBack = value < m_lastScrollValue;
    m_lastScrollValue = value;
    scheduleVisibleUpdate();
}

void ThumbnailView::resizeEvent(QResizeEvent *event)
{
    QListView::resizeEvent(event);
    scheduleVisibleUpdate();
}

void ThumbnailView::showEvent(QShowEvent *event)
{
    QListView::showEvent(event);
    scheduleVisibleUpdate();
}

void ThumbnailView::paintEvent(QPaintEvent *event)
{
    QListView::paintEvent(event);
    if (m_emptyText.isEmpty() || (model() && model()->rowCount(rootIndex()) > 0))
        return;
    QPainter painter(viewport());
    QColor color = palette().color(QPalette::Text);
    color.setAlphaF(0.55f);
    painter.setPen(color);
    painter.drawText(viewport()->rect().adjusted(24, 24, -24, -24),
                     Qt::AlignCenter | Qt::TextWordWrap, m_emptyText);
}

void ThumbnailView::scheduleVisibleUpdate()
{
    if (m_thumbnailModel)
        m_settleTimer.start();
}

void ThumbnailView::prioritizeVisible()
{
    if (!m_thumbnailModel || !isVisible())
        return;
    const auto [first, last] = visibleRowRange();
    if (first < 0) {
        m_thumbnailModel->prioritizeRows(-1, -1);
        return;
    }
    // One screen ahead in the direction the user was scrolling.
    const int count = last - first + 1;
    if (m_scrollingBack)
        m_thumbnailModel->prioritizeRows(first, last, first - count, first - 1);
    else
        m_thumbnailModel->prioritizeRows(first, last, last + 1, last + count);
}

void ThumbnailView::updateCurrentSample(int sampleRow)
{
    if (sampleRow == m_currentSampleRow)
        return;
    m_currentSampleRow = sampleRow;
    Q_EMIT currentSampleChanged(sampleRow);
}

int ThumbnailView::sampleRowOf(const QModelIndex &index) const
{
    if (!index.isValid())
        return -1;
    const QVariant row = index.data(ThumbnailModel::SampleRowRole);
    return row.isValid() ? row.toInt() : -1;
}

} // namespace ifs
