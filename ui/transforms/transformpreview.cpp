#include "transforms/transformpreview.h"

#include "transforms/imagetile.h"

#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QScrollArea>
#include <QScrollBar>
#include <QSplitter>
#include <QTabBar>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace {

/// Distinct colours for the draws' crop boxes (and their tiles' captions).
QColor drawColor(int draw)
{
    static const QList<QColor> colors{
        QColor(0xe6, 0x39, 0x46), QColor(0x2a, 0x9d, 0x8f), QColor(0xf4, 0xa2, 0x61),
        QColor(0x45, 0x7b, 0x9d), QColor(0x9b, 0x5d, 0xe5), QColor(0xe9, 0xc4, 0x6a),
        QColor(0x06, 0xd6, 0xa0), QColor(0xef, 0x47, 0x6f),
    };
    return colors[draw % colors.size()];
}

QLabel *heading(const QString &text, QWidget *parent)
{
    auto *label = new QLabel(text, parent);
    QFont font = label->font();
    font.setBold(true);
    label->setFont(font);
    return label;
}

QString numbers(const std::vector<double> &values)
{
    QStringList parts;
    for (double v : values)
        parts.append(QString::number(v, 'f', 3));
    return parts.size() == 1 ? parts.constFirst() : u'(' + parts.join(QStringLiteral(", ")) + u')';
}

} // namespace

TransformPreview::TransformPreview(QWidget *parent)
    : QWidget(parent)
    , m_splitter(new QSplitter(Qt::Vertical, this))
    , m_trainTitle(heading(tr("Train"), this))
    , m_valTitle(heading(tr("Val"), this))
    , m_busy(new QLabel(this))
    , m_original(new ImageTile(this))
    , m_val(new ImageTile(this))
    , m_grid(new QWidget(this))
    , m_gridLayout(new QGridLayout(m_grid))
    , m_trainError(new QLabel(this))
    , m_trainStats(new QLabel(this))
    , m_valStats(new QLabel(this))
    , m_stripTabs(new QTabBar(this))
    , m_stripTitle(heading(tr("Step by step"), this))
    , m_stripScroll(new QScrollArea(this))
    , m_strip(new QWidget(this))
    , m_stripLayout(new QHBoxLayout(m_strip))
{
    setObjectName(QStringLiteral("transformPreview"));
    m_original->setObjectName(QStringLiteral("originalTile"));
    m_original->setMinimumImageSide(120);
    m_val->setObjectName(QStringLiteral("valTile"));
    m_val->setMinimumImageSide(120);
    m_busy->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_trainError->setObjectName(QStringLiteral("trainError"));
    m_trainError->setWordWrap(true);
    m_trainError->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_trainError->setAlignment(Qt::AlignCenter);
    m_trainError->setStyleSheet(QStringLiteral("color: #b00020;"));
    m_trainError->hide();
    for (QLabel *stats : {m_trainStats, m_valStats}) {
        stats->setWordWrap(true);
        stats->setTextInteractionFlags(Qt::TextSelectableByMouse);
        stats->setStyleSheet(QStringLiteral("color: palette(text);"));
    }
    m_trainStats->setObjectName(QStringLiteral("trainStats"));
    m_valStats->setObjectName(QStringLiteral("valStats"));
    m_gridLayout->setContentsMargins(0, 0, 0, 0);
    m_gridLayout->setSpacing(4);

    auto *originalTitle = heading(tr("Original"), this);
    originalTitle->setToolTip(tr("The image as torchvision's loader gives it, with the crop "
                                 "boxes of the train draws (the selected draw thicker) and the "
                                 "val crop dashed"));
    // Left column: the original with its crop boxes, the val result under it; right: the grid.
    auto *sideBox = new QVBoxLayout;
    sideBox->addWidget(originalTitle);
    sideBox->addWidget(m_original, 3);
    sideBox->addSpacing(6);
    sideBox->addWidget(m_valTitle);
    sideBox->addWidget(m_val, 2);
    sideBox->addWidget(m_valStats);
    auto *trainHeader = new QHBoxLayout;
    trainHeader->addWidget(m_trainTitle);
    trainHeader->addStretch(1);
    trainHeader->addWidget(m_busy);
    auto *trainBox = new QVBoxLayout;
    trainBox->addLayout(trainHeader);
    trainBox->addWidget(m_grid, 1);
    trainBox->addWidget(m_trainError, 1);
    trainBox->addWidget(m_trainStats);

    auto *top = new QWidget(this);
    auto *topLayout = new QHBoxLayout(top);
    topLayout->setContentsMargins(0, 0, 0, 0);
    topLayout->setSpacing(12);
    topLayout->addLayout(sideBox, 4);
    topLayout->addLayout(trainBox, 5);

    m_stripTabs->setObjectName(QStringLiteral("stripTabs"));
    m_stripTabs->addTab(tr("Train draw"));
    m_stripTabs->addTab(tr("Val"));
    m_stripTabs->setDrawBase(false);
    m_stripTabs->setExpanding(false);
    connect(m_stripTabs, &QTabBar::currentChanged, this, &TransformPreview::showStrip);
    m_stripLayout->setContentsMargins(0, 0, 0, 0);
    m_stripLayout->setSpacing(2);
    m_stripLayout->addStretch(1);
    m_stripScroll->setWidget(m_strip);
    m_stripScroll->setWidgetResizable(true);
    m_stripScroll->setFrameShape(QFrame::NoFrame);
    m_stripScroll->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    m_stripScroll->setObjectName(QStringLiteral("stepStrip"));
    auto *stripHeader = new QHBoxLayout;
    stripHeader->addWidget(m_stripTitle);
    stripHeader->addWidget(m_stripTabs);
    stripHeader->addStretch(1);
    auto *bottom = new QWidget(this);
    auto *bottomLayout = new QVBoxLayout(bottom);
    bottomLayout->setContentsMargins(0, 4, 0, 0);
    bottomLayout->addLayout(stripHeader);
    bottomLayout->addWidget(m_stripScroll, 1);
    bottom->setMinimumHeight(170);

    m_splitter->setObjectName(QStringLiteral("previewSplitter"));
    m_splitter->addWidget(top);
    m_splitter->addWidget(bottom);
    m_splitter->setStretchFactor(0, 3);
    m_splitter->setStretchFactor(1, 2);
    m_splitter->setChildrenCollapsible(false);
    m_splitter->setSizes({520, 250});
    m_grid->installEventFilter(this);
    m_stripScroll->installEventFilter(this);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_splitter);
    clear();
}

void TransformPreview::clear(const QString &message)
{
    m_result = {};
    m_original->setMessage(message.isEmpty() ? tr("No image") : message);
    m_original->setCaption({});
    m_val->setMessage(QString());
    m_val->setCaption({});
    rebuildTrainTiles(0);
    m_trainError->hide();
    m_grid->show();
    m_trainStats->clear();
    m_valStats->clear();
    m_trainTitle->setText(tr("Train"));
    showStrip();
}

void TransformPreview::setBusy(bool busy)
{
    m_busy->setText(busy ? tr("Updating…") : QString());
}

void TransformPreview::setFailure(const QString &message)
{
    clear();
    m_original->setMessage(message, true);
}

void TransformPreview::rebuildTrainTiles(int count)
{
    if (m_trainTiles.size() != count) {
        qDeleteAll(m_trainTiles);
        m_trainTiles.clear();
        for (int k = 0; k < count; ++k) {
            auto *tile = new ImageTile(m_grid);
            tile->setObjectName(QStringLiteral("trainTile%1").arg(k));
            tile->setMinimumImageSide(56);
            tile->setClickable(true);
            connect(tile, &ImageTile::clicked, this, [this, k] { Q_EMIT drawClicked(k); });
            m_trainTiles.append(tile);
        }
        m_gridColumns = 0;
    }
    layoutTrainTiles();
}

void TransformPreview::layoutTrainTiles()
{
    // The column count that gives the largest square tiles in the space there is.
    const int count = int(m_trainTiles.size());
    if (count == 0)
        return;
    const QSize area = m_grid->size();
    const int caption = 2 * fontMetrics().height() + 8;
    int best = 1;
    double bestSide = -1.0;
    for (int columns = 1; columns <= count; ++columns) {
        const int rows = (count + columns - 1) / columns;
        const double side
            = std::min(double(area.width()) / columns, double(area.height()) / rows - caption);
        if (side > bestSide + 0.5) {
            bestSide = side;
            best = columns;
        }
    }
    if (best == m_gridColumns)
        return;
    m_gridColumns = best;
    for (ImageTile *tile : std::as_const(m_trainTiles))
        m_gridLayout->removeWidget(tile);
    for (int k = 0; k < count; ++k)
        m_gridLayout->addWidget(m_trainTiles[k], k / best, k % best);
}

bool TransformPreview::eventFilter(QObject *watched, QEvent *event)
{
    if (event->type() == QEvent::Resize) {
        if (watched == m_grid)
            layoutTrainTiles();
        else if (watched == m_stripScroll)
            sizeStepTiles();
    }
    return QWidget::eventFilter(watched, event);
}

void TransformPreview::sizeStepTiles()
{
    // Square images as tall as the strip allows, captions below. From the scroll area's height
    // less a scroll bar, whether or not one shows: the widths decide whether it shows.
    const int caption = 3 * fontMetrics().height() + 10;
    const int height = m_stripScroll->height() - 2 * m_stripScroll->frameWidth()
        - m_stripScroll->horizontalScrollBar()->sizeHint().height();
    const int side = std::clamp(height - caption, 80, 300);
    for (ImageTile *tile : std::as_const(m_stepTiles))
        tile->setFixedWidth(std::max(side + 8, 184));
}

void TransformPreview::setResult(const PreviewResult &result)
{
    m_result = result;
    const QSize originalSize = result.original.size();
    m_original->setImage(
        result.original.width() > 1024 || result.original.height() > 1024
            ? result.original.scaled(1024, 1024, Qt::KeepAspectRatio, Qt::SmoothTransformation)
            : result.original,
        originalSize);
    m_original->setCaption(
        QStringLiteral("%1 × %2").arg(originalSize.width()).arg(originalSize.height()),
        result.originalDescription);

    // Train draws. An error every draw hits alike is said once, in place of the grid.
    QString gridError = result.trainError;
    if (gridError.isEmpty() && !result.train.isEmpty() && !result.train.constFirst().error.isEmpty()
        && std::all_of(result.train.begin(), result.train.end(), [&](const PreviewOutput &out) {
               return out.error == result.train.constFirst().error;
           }))
        gridError = result.train.constFirst().error;
    m_trainError->setVisible(!gridError.isEmpty());
    m_grid->setVisible(gridError.isEmpty());
    m_trainError->setText(gridError);
    rebuildTrainTiles(gridError.isEmpty() ? int(result.train.size()) : 0);
    m_trainTitle->setText(
        tr("Train · %n random draw(s) · seed %1", nullptr, int(result.train.size()))
            .arg(result.seed));
    m_trainTitle->setToolTip(
        tr("Draw k is exactly what Python gives for\n"
           "torch.manual_seed(%1 + k); train_transform(img)\nClick a draw to see its steps.")
            .arg(result.seed));
    for (int k = 0; k < m_trainTiles.size(); ++k) {
        const PreviewOutput &out = result.train[k];
        ImageTile *tile = m_trainTiles[k];
        if (!out.error.isEmpty())
            tile->setMessage(out.error, true);
        else
            tile->setImage(out.image, out.size);
        tile->setCaption(
            QStringLiteral("#%1").arg(k + 1),
            out.error.isEmpty()
                ? QStringLiteral("%1 × %2").arg(out.size.width()).arg(out.size.height())
                : QString());
        tile->setSelected(k == result.traceDraw);
        QString details = out.error.isEmpty() ? out.summaries.join(u'\n') : out.error;
        details = details.toHtmlEscaped().replace(u'\n', QStringLiteral("<br>"));
        tile->setToolTip(tr("<b>Draw #%1</b> — torch.manual_seed(%2)<br>%3")
                             .arg(k + 1)
                             .arg(out.seed)
                             .arg(details));
    }
    if (gridError.isEmpty() && result.traceDraw < result.train.size()
        && result.train[result.traceDraw].error.isEmpty())
        m_trainStats->setText(tr("Draw #%1: %2")
                                  .arg(result.traceDraw + 1)
                                  .arg(statsText(result.train[result.traceDraw])));
    else
        m_trainStats->clear();

    // Val.
    if (!result.valError.isEmpty()) {
        m_val->setMessage(result.valError, true);
        m_val->setCaption({});
        m_valStats->clear();
    } else if (!result.val.error.isEmpty()) {
        m_val->setMessage(result.val.error, true);
        m_val->setCaption({});
        m_valStats->clear();
    } else {
        m_val->setImage(result.val.image, result.val.size);
        m_val->setCaption(
            QStringLiteral("%1 × %2").arg(result.val.size.width()).arg(result.val.size.height()),
            result.val.denormalised ? tr("denormalised for display") : QString());
        m_val->setToolTip(result.val.summaries.join(u'\n'));
        m_valStats->setText(statsText(result.val));
    }
    updateBoxes();
    showStrip();
}

QString TransformPreview::statsText(const PreviewOutput &output) const
{
    if (!output.error.isEmpty())
        return {};
    if (!output.isTensor)
        return tr("%1 — not a tensor: a DataLoader cannot batch it (add ToTensor)")
            .arg(output.description);
    QString text = output.description;
    text += tr(" · mean %1 · std %2").arg(numbers(output.stats.mean), numbers(output.stats.std));
    if (output.denormalised)
        text += tr(" (after Normalize; the image is shown denormalised)");
    return text;
}

void TransformPreview::updateBoxes()
{
    QList<ImageTile::Box> boxes;
    for (int k = 0; k < m_result.train.size(); ++k)
        for (const QRectF &region : m_result.train[k].regions)
            boxes.append({region, drawColor(k), k == m_result.traceDraw, false});
    for (const QRectF &region : m_result.val.regions)
        boxes.append({region, QColor(Qt::white), false, true});
    m_original->setBoxes(boxes);
    // The tiles' captions carry their box colour.
    for (int k = 0; k < m_trainTiles.size(); ++k) {
        QPalette pal = m_trainTiles[k]->palette();
        if (k < m_result.train.size() && !m_result.train[k].regions.isEmpty())
            pal.setColor(QPalette::WindowText, drawColor(k).darker(115));
        else
            pal = palette();
        m_trainTiles[k]->setPalette(pal);
    }
}

void TransformPreview::setStripShowsVal(bool val)
{
    m_stripTabs->setCurrentIndex(val ? 1 : 0);
}

bool TransformPreview::stripShowsVal() const
{
    return m_stripTabs->currentIndex() == 1;
}

void TransformPreview::showStrip()
{
    const bool val = stripShowsVal();
    const QList<PreviewStep> &steps = val ? m_result.valSteps : m_result.trainSteps;
    m_stripTabs->setTabText(0,
                            m_result.train.isEmpty()
                                ? tr("Train draw")
                                : tr("Train draw #%1").arg(m_result.traceDraw + 1));
    // Rebuild: the number of steps changes with the pipeline.
    while (QLayoutItem *item = m_stripLayout->takeAt(0)) {
        if (QWidget *widget = item->widget())
            widget->deleteLater();
        delete item;
    }
    m_stepTiles.clear();
    for (int i = 0; i < steps.size(); ++i) {
        const PreviewStep &step = steps[i];
        if (i > 0) {
            auto *arrow = new QLabel(QStringLiteral("→"), m_strip);
            arrow->setAlignment(Qt::AlignCenter);
            arrow->setStyleSheet(QStringLiteral("color: palette(mid); font-size: 16px;"));
            m_stripLayout->addWidget(arrow);
        }
        auto *tile = new ImageTile(m_strip);
        tile->setObjectName(QStringLiteral("stepTile%1").arg(i));
        tile->setMinimumImageSide(80);
        if (step.image.isNull())
            tile->setMessage(tr("(no image for %1)").arg(step.description));
        else
            tile->setImage(step.image);
        const QString title = i == 0 ? step.name : QStringLiteral("%1. %2").arg(i).arg(step.name);
        QString summary = step.summary;
        if (!step.applied && summary.isEmpty())
            summary = tr("not applied");
        tile->setCaption(title, summary,
                         step.description
                             + (step.denormalised ? tr(" (shown denormalised)") : QString()));
        tile->setToolTip(QStringLiteral("<b>%1</b><br>%2<br>%3")
                             .arg(title.toHtmlEscaped(), summary.toHtmlEscaped(),
                                  step.description.toHtmlEscaped()));
        if (!step.applied) {
            QPalette pal = tile->palette();
            QColor dim = pal.color(QPalette::WindowText);
            dim.setAlphaF(0.55);
            pal.setColor(QPalette::WindowText, dim);
            tile->setPalette(pal);
        }
        m_stripLayout->addWidget(tile);
        m_stepTiles.append(tile);
    }
    sizeStepTiles();
    if (steps.isEmpty()) {
        QString why = val ? m_result.valError : m_result.trainError;
        if (why.isEmpty())
            why = val ? m_result.val.error : m_result.train.value(m_result.traceDraw).error;
        auto *empty = new QLabel(m_result.path.isEmpty() ? tr("The steps of a run show here.")
                                     : why.isEmpty()     ? tr("No steps to show.")
                                                         : tr("No steps to show: %1").arg(why),
                                 m_strip);
        empty->setWordWrap(true);
        empty->setStyleSheet(why.isEmpty() ? QStringLiteral("color: palette(mid);")
                                           : QStringLiteral("color: #b00020;"));
        m_stripLayout->addWidget(empty);
    }
    m_stripLayout->addStretch(1);
}

} // namespace ifs
