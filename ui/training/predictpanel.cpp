#include "training/predictpanel.h"

#include "checkpoint/checkpointfiles.h"
#include "common/pixmaps.h"
#include "common/thumbnailloader.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QTableWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>

namespace ifs {

namespace {

QString percent(double fraction, int decimals = 1)
{
    return QString::number(100.0 * fraction, 'f', decimals) + u'%';
}

enum CheckpointKind { BestKind, LastKind, OtherKind, ChooseKind };
constexpr int kKindRole = Qt::UserRole + 1;
} // namespace

PredictPanel::PredictPanel(QWidget *parent)
    : QWidget(parent)
    , m_job(new PredictJob(this))
    , m_loader(new ThumbnailLoader(this))
{
    setObjectName(QStringLiteral("predictPanel"));
    setAcceptDrops(true);
    m_loader->setThumbnailSize(64);

    m_checkpointCombo = new QComboBox(this);
    m_checkpointCombo->setObjectName(QStringLiteral("predictCheckpointCombo"));
    m_checkpointCombo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_checkpointLabel = new QLabel(this);
    m_checkpointLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_checkpointLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_addImages = new QPushButton(tr("Predict Images…"), this);
    m_addImages->setObjectName(QStringLiteral("predictImagesButton"));
    m_addFolder = new QPushButton(tr("Predict Folder…"), this);
    m_addFolder->setObjectName(QStringLiteral("predictFolderButton"));
    m_topk = new QSpinBox(this);
    m_topk->setObjectName(QStringLiteral("topkSpin"));
    m_topk->setRange(1, 20);
    m_topk->setValue(5);
    m_topk->setPrefix(tr("top-"));
    m_topk->setToolTip(tr("How many classes to list per image, most likely first"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 0);
    m_progress->setMaximumWidth(120);
    m_progress->setTextVisible(false);
    m_progress->hide();
    m_status = new QLabel(tr("Choose images or a folder, or drop them here."), this);
    m_status->setObjectName(QStringLiteral("predictStatus"));
    m_status->setWordWrap(true);

    auto *top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Checkpoint:"), this));
    top->addWidget(m_checkpointCombo);
    top->addWidget(m_checkpointLabel, 1);
    auto *actions = new QHBoxLayout;
    actions->addWidget(m_addImages);
    actions->addWidget(m_addFolder);
    actions->addWidget(m_topk);
    actions->addWidget(m_progress);
    actions->addWidget(m_status, 1);

    m_table = new QTableWidget(this);
    m_table->setObjectName(QStringLiteral("predictTable"));
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setIconSize(QSize(48, 48));
    m_table->verticalHeader()->hide();
    m_table->verticalHeader()->setDefaultSectionSize(54);
    m_table->setAlternatingRowColors(true);
    m_table->horizontalHeader()->setStretchLastSection(false);

    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 8, 8, 8);
    layout->addLayout(top);
    layout->addLayout(actions);
    auto *body = new QHBoxLayout;
    body->addWidget(m_table, 1);
    body->addWidget(buildGradCamPane());
    layout->addLayout(body, 1);

    connect(m_checkpointCombo, &QComboBox::activated, this, [this] {
        if (m_checkpointCombo->currentData(kKindRole).toInt() == ChooseKind)
            chooseCheckpoint();
        else
            updateCheckpointChoice();
    });
    connect(m_addImages, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(
            this, tr("Predict Images"), m_startFolder,
            tr("Images (*.jpg *.jpeg *.png *.ppm *.bmp *.pgm *.tif *.tiff *.webp);;"
               "All files (*)"));
        if (!files.isEmpty()) {
            m_startFolder = QFileInfo(files.constFirst()).absolutePath();
            predict(files);
        }
    });
    connect(m_addFolder, &QPushButton::clicked, this, [this] {
        const QString folder
            = QFileDialog::getExistingDirectory(this, tr("Predict a Folder"), m_startFolder);
        if (!folder.isEmpty()) {
            m_startFolder = folder;
            predict({folder});
        }
    });
    connect(m_topk, &QSpinBox::valueChanged, this, [this] {
        if (!m_paths.isEmpty())
            predict(m_paths);
    });
    connect(m_job, &PredictJob::finished, this, &PredictPanel::showPredictions);
    connect(m_job, &PredictJob::failed, this, [this](const QString &message) {
        m_progress->hide();
        m_status->setText(message);
        Q_EMIT predictionFailed(message);
    });
    connect(m_loader, &ThumbnailLoader::thumbnailReady, this,
            [this](const QString &path, const QImage &image) {
                const int row = m_rowOfPath.value(path, -1);
                if (row >= 0 && m_table->item(row, 0))
                    m_table->item(row, 0)->setIcon(QIcon(fittedPixmap(image, 48)));
            });
    connect(m_table, &QTableWidget::currentCellChanged, this, &PredictPanel::requestGradCam);
    connect(m_job, &PredictJob::gradCamFinished, this,
            [this](const QString &image, const GradCamResult &result) {
                if (image != m_camPath)
                    return;
                m_cam = result;
                renderGradCam();
                Q_EMIT gradCamShown();
            });
    connect(m_job, &PredictJob::gradCamFailed, this, [this](const QString &message) {
        m_cam.reset();
        renderGradCam();
        m_camInfo->setText(message);
    });
    setRunCheckpoints({}, {});
}

PredictPanel::~PredictPanel() = default;

QWidget *PredictPanel::buildGradCamPane()
{
    auto *pane = new QWidget(this);
    m_camToggle = new QCheckBox(tr("Grad-CAM heatmap"), pane);
    m_camToggle->setObjectName(QStringLiteral("gradCamToggle"));
    m_camToggle->setToolTip(tr("Where the model looked for the predicted class: the last "
                               "convolutional stage's Grad-CAM over the selected image"));
    m_camOpacity = new QSlider(Qt::Horizontal, pane);
    m_camOpacity->setObjectName(QStringLiteral("gradCamOpacity"));
    m_camOpacity->setRange(0, 100);
    m_camOpacity->setValue(50);
    m_camOpacity->setToolTip(tr("The heatmap's opacity over the image"));
    m_camPreview = new QLabel(pane);
    m_camPreview->setObjectName(QStringLiteral("gradCamPreview"));
    m_camPreview->setAlignment(Qt::AlignCenter);
    m_camPreview->setMinimumSize(224, 224);
    m_camInfo = new QLabel(tr("Select an image"), pane);
    m_camInfo->setWordWrap(true);
    m_camSave = new QPushButton(tr("Save PNG…"), pane);
    m_camSave->setEnabled(false);
    auto *layout = new QVBoxLayout(pane);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_camToggle);
    auto *opacity = new QHBoxLayout;
    opacity->addWidget(new QLabel(tr("Opacity"), pane));
    opacity->addWidget(m_camOpacity, 1);
    layout->addLayout(opacity);
    layout->addWidget(m_camPreview);
    layout->addWidget(m_camInfo);
    layout->addWidget(m_camSave);
    layout->addStretch(1);
    connect(m_camToggle, &QCheckBox::toggled, this, &PredictPanel::requestGradCam);
    connect(m_camOpacity, &QSlider::valueChanged, this, &PredictPanel::renderGradCam);
    connect(m_camSave, &QPushButton::clicked, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save Grad-CAM"),
                                                          QFileInfo(m_camPath).completeBaseName()
                                                              + QStringLiteral(".cam.png"),
                                                          tr("PNG images (*.png)"));
        if (path.isEmpty())
            return;
        if (Status saved = saveGradCam(path); !saved)
            m_camInfo->setText(saved.errorMessage());
    });
    return pane;
}

void PredictPanel::requestGradCam()
{
    const int row = m_table->currentRow();
    const QTableWidgetItem *item = row >= 0 ? m_table->item(row, 0) : nullptr;
    const QTableWidgetItem *top = row >= 0 ? m_table->item(row, 1) : nullptr;
    const bool usable = item && top && top->data(Qt::UserRole + 1).isValid();
    m_camPath = usable ? item->data(Qt::UserRole).toString() : QString();
    m_cam.reset();
    renderGradCam();
    if (!m_camToggle->isChecked() || m_camPath.isEmpty() || checkpoint().isEmpty())
        return;
    m_camInfo->setText(tr("Computing Grad-CAM…"));
    m_job->startGradCam(checkpoint(), m_camPath, -1, m_options);
}

void PredictPanel::renderGradCam()
{
    m_camImage = m_cam && m_camToggle->isChecked()
        ? gradCamOverlay(*m_cam, m_camOpacity->value() / 100.0)
        : QImage();
    m_camSave->setEnabled(!m_camImage.isNull());
    if (m_camImage.isNull()) {
        m_camPreview->clear();
        m_camInfo->setText(m_camToggle->isChecked() ? tr("Select an image")
                                                    : tr("Turn on to see where it looked"));
        return;
    }
    m_camPreview->setPixmap(QPixmap::fromImage(
        m_camImage.scaled(224, 224, Qt::KeepAspectRatio, Qt::SmoothTransformation)));
    m_camInfo->setText(
        tr("%1: %2 · %3×%4 maps")
            .arg(m_classes.value(m_cam->classIndex, QString::number(m_cam->classIndex)),
                 percent(m_cam->probability))
            .arg(m_cam->featureSize.width())
            .arg(m_cam->featureSize.height()));
}

Status PredictPanel::saveGradCam(const QString &path) const
{
    return writePngAtomically(m_camImage, path);
}

void PredictPanel::setRunCheckpoints(const QString &best, const QString &last)
{
    m_best = best;
    m_last = last;
    const int previous = m_checkpointCombo->currentData(kKindRole).toInt();
    const QSignalBlocker blocker(m_checkpointCombo);
    m_checkpointCombo->clear();
    if (!best.isEmpty())
        m_checkpointCombo->addItem(tr("Best of this run"), best);
    if (!best.isEmpty())
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, BestKind, kKindRole);
    if (!last.isEmpty()) {
        m_checkpointCombo->addItem(tr("Last of this run"), last);
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, LastKind, kKindRole);
    }
    if (!m_other.isEmpty()) {
        m_checkpointCombo->addItem(QFileInfo(m_other).fileName(), m_other);
        m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, OtherKind, kKindRole);
    }
    m_checkpointCombo->addItem(tr("Choose File…"));
    m_checkpointCombo->setItemData(m_checkpointCombo->count() - 1, ChooseKind, kKindRole);
    int index = m_checkpointCombo->findData(previous, kKindRole);
    if (index < 0 || previous == ChooseKind)
        index = 0;
    m_checkpointCombo->setCurrentIndex(index);
    updateCheckpointChoice();
}

void PredictPanel::setCheckpoint(const QString &path)
{
    m_other = path;
    setRunCheckpoints(m_best, m_last);
    m_checkpointCombo->setCurrentIndex(m_checkpointCombo->findData(OtherKind, kKindRole));
    updateCheckpointChoice();
}

QString PredictPanel::checkpoint() const
{
    return m_checkpointCombo->currentData().toString();
}

void PredictPanel::chooseCheckpoint()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Checkpoint for Prediction"),
        m_other.isEmpty() ? (m_best.isEmpty() ? QString() : QFileInfo(m_best).absolutePath())
                          : QFileInfo(m_other).absolutePath(),
        tr("Checkpoints (%1);;All files (*)").arg(ckpt::checkpointNameFilter()));
    if (path.isEmpty()) {
        setRunCheckpoints(m_best, m_last); // back to what was chosen before
        return;
    }
    setCheckpoint(path);
}

void PredictPanel::updateCheckpointChoice()
{
    const QString path = checkpoint();
    m_checkpointLabel->setText(path.isEmpty() ? tr("none yet: train, or choose a file")
                                              : QDir::toNativeSeparators(path));
    m_checkpointLabel->setToolTip(QDir::toNativeSeparators(path));
    m_addImages->setEnabled(!path.isEmpty());
    m_addFolder->setEnabled(!path.isEmpty());
}

void PredictPanel::setTopK(int k)
{
    m_topk->setValue(k);
}

int PredictPanel::topK() const
{
    return m_topk->value();
}

bool PredictPanel::isPredicting() const
{
    return m_job->isRunning();
}

void PredictPanel::predict(const QStringList &paths)
{
    const QString path = checkpoint();
    if (path.isEmpty()) {
        const QString message = tr("No checkpoint: train a model or choose a checkpoint file.");
        m_status->setText(message);
        Q_EMIT predictionFailed(message);
        return;
    }
    m_paths = paths;
    m_progress->show();
    m_status->setText(tr("Predicting with %1…").arg(QFileInfo(path).fileName()));
    m_job->start(path, paths, m_topk->value(), m_options);
}

void PredictPanel::showPredictions(const QList<ImagePrediction> &predictions,
                                   const QStringList &classes, const QStringList &notes)
{
    m_progress->hide();
    m_loader->clear();
    m_rowOfPath.clear();
    m_classes = classes;
    int k = 1;
    for (const ImagePrediction &prediction : predictions)
        k = std::max(k, int(prediction.top.size()));
    m_table->clear();
    m_table->setRowCount(int(predictions.size()));
    m_table->setColumnCount(1 + k);
    QStringList headers{tr("Image")};
    for (int i = 1; i <= k; ++i)
        headers.append(i == 1 ? tr("Prediction") : tr("#%1").arg(i));
    m_table->setHorizontalHeaderLabels(headers);
    int failed = 0;
    for (int row = 0; row < predictions.size(); ++row) {
        const ImagePrediction &prediction = predictions[row];
        auto *image = new QTableWidgetItem(QFileInfo(prediction.path).fileName());
        image->setToolTip(QDir::toNativeSeparators(prediction.path));
        image->setData(Qt::UserRole, prediction.path);
        m_table->setItem(row, 0, image);
        m_rowOfPath.insert(prediction.path, row);
        m_loader->request(prediction.path, -row); // the first rows first
        if (!prediction.error.isEmpty()) {
            ++failed;
            auto *error = new QTableWidgetItem(prediction.error);
            error->setForeground(QColor(0xc0, 0x39, 0x2b));
            error->setToolTip(prediction.error);
            m_table->setItem(row, 1, error);
            continue;
        }
        for (int i = 0; i < prediction.top.size(); ++i) {
            const auto &[classIndex, probability] = prediction.top[i];
            const QString name = classIndex >= 0 && classIndex < classes.size()
                ? classes[classIndex]
                : QString::number(classIndex);
            auto *item
                = new QTableWidgetItem(QStringLiteral("%1  %2").arg(name, percent(probability)));
            QColor shade(0x4c, 0x9b, 0xe8);
            shade.setAlphaF(0.08f + 0.6f * probability);
            item->setBackground(shade);
            item->setData(Qt::UserRole, classIndex);
            item->setData(Qt::UserRole + 1, probability);
            if (i == 0) {
                QFont bold = item->font();
                bold.setBold(true);
                item->setFont(bold);
            }
            m_table->setItem(row, 1 + i, item);
        }
    }
    m_table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    for (int column = 1; column <= k; ++column)
        m_table->horizontalHeader()->setSectionResizeMode(column, QHeaderView::ResizeToContents);
    QString text = tr("%n image(s) predicted", nullptr, int(predictions.size()));
    if (failed > 0)
        text += tr("; %n could not be read", nullptr, failed);
    if (!notes.isEmpty())
        text += QStringLiteral(" · ") + notes.join(QStringLiteral(" · "));
    m_status->setText(text);
    requestGradCam();
    Q_EMIT predictionsShown();
}

void PredictPanel::dragEnterEvent(QDragEnterEvent *event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (!urls.isEmpty() && !checkpoint().isEmpty()
        && std::all_of(urls.cbegin(), urls.cend(),
                       [](const QUrl &url) { return url.isLocalFile(); }))
        event->acceptProposedAction();
}

void PredictPanel::dropEvent(QDropEvent *event)
{
    QStringList paths;
    for (const QUrl &url : event->mimeData()->urls())
        if (url.isLocalFile())
            paths.append(url.toLocalFile());
    if (paths.isEmpty())
        return;
    event->acceptProposedAction();
    predict(paths);
}

} // namespace ifs
