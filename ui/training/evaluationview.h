#pragma once

#include "training/evaluation.h"
#include "training/evaluationjob.h"
#include "training/predictjob.h"

#include <QAbstractListModel>
#include <QAbstractTableModel>
#include <QCache>
#include <QHash>
#include <QPixmap>
#include <QWidget>

#include <memory>
#include <vector>

class QCheckBox;
class QComboBox;
class QLabel;
class QListView;
class QProgressBar;
class QPushButton;
class QSortFilterProxyModel;
class QSpinBox;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QTableView;
class QTableWidget;

namespace ifs {

class ConfusionMatrixView;
class ThumbnailLoader;
class WarningBanner;

/// Images with what a model made of them, as a thumbnail gallery: "Sandal → Sneaker (p=0.93)".
/// Thumbnails come from a ThumbnailLoader (requested when a row is first shown, never decoded
/// in data()) and are cached as pixmaps.
class PredictionListModel : public QAbstractListModel
{
    Q_OBJECT

public:
    enum Role { PathRole = Qt::UserRole + 1, LossRole, ConfidenceRole, CorrectRole };

    explicit PredictionListModel(ThumbnailLoader *loader, QObject *parent = nullptr);

    void setPredictions(const QList<SamplePrediction> &predictions, const QStringList &classes);
    void clear();
    const QList<SamplePrediction> &predictions() const { return m_predictions; }
    /// Pixel size of the thumbnails shown (small images are enlarged without smoothing).
    void setIconSize(int pixels);
    int iconSize() const { return m_iconSize; }
    /// The size every item reports (Qt::SizeHintRole), for views with uniform item sizes.
    void setItemSize(const QSize &size) { m_itemSize = size; }
    /// "Sandal → Sneaker (p=0.93)"
    QString caption(const SamplePrediction &prediction) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;

private:
    void onThumbnail(const QString &path, const QImage &image);
    QString className(int index) const;

    ThumbnailLoader *m_loader;
    QList<SamplePrediction> m_predictions;
    QStringList m_classes;
    QHash<QString, QList<int>> m_rowsOfPath;
    mutable QCache<QString, QPixmap> m_pixmaps;
    QPixmap m_placeholder;
    int m_iconSize = 96;
    QSize m_itemSize;
};

/// Per-class precision, recall, F1, support and predicted count (sort through a proxy: the
/// numbers are in Qt::EditRole as numbers).
class ClassMetricsModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Column {
        ClassColumn,
        PrecisionColumn,
        RecallColumn,
        F1Column,
        SupportColumn,
        PredictedColumn,
        ColumnCount
    };

    using QAbstractTableModel::QAbstractTableModel;
    void setMetrics(const QStringList &classes, const QList<ClassMetrics> &metrics);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation,
                        int role = Qt::DisplayRole) const override;

private:
    QStringList m_classes;
    QList<ClassMetrics> m_metrics;
};

/// What a model gets right and wrong on the validation images: accuracy, loss and macro-F1, the
/// confusion matrix (click a cell to see its images), a sortable per-class table and a gallery
/// of the misclassified images ranked by loss or confidence. Shows the evaluation of each epoch
/// of a run, or of any checkpoint on demand (loaded and evaluated off the GUI thread, with
/// progress and Cancel).
class EvaluationView : public QWidget
{
    Q_OBJECT

public:
    explicit EvaluationView(QWidget *parent = nullptr);
    ~EvaluationView() override;

    /// Shows an evaluation; `source` says what it is ("Epoch 3 (best)", "best.pth").
    void setEvaluation(std::shared_ptr<const Evaluation> evaluation, const QString &source);
    std::shared_ptr<const Evaluation> evaluation() const { return m_evaluation; }
    void clear();

    /// The labelled images "Evaluate Checkpoint…" runs on, and a phrase saying what they are
    /// ("the val split (10,000 images)").
    void setValidationSamples(std::vector<LoaderSample> samples, const QString &description);
    /// The same, listed on the worker when an evaluation starts (a held-out split to compute).
    void setValidationSource(SampleSource source, const QString &description);
    bool hasValidationSamples() const { return bool(m_samples); }
    /// Device and fallbacks for checkpoints (val transforms, classes) used by evaluations.
    void setClassifierOptions(const ClassifierOptions &options) { m_options = options; }
    /// Where the checkpoint dialog starts.
    void setCheckpointFolder(const QString &folder) { m_checkpointFolder = folder; }

    /// Loads `checkpoint` and evaluates it on the validation samples, off the GUI thread.
    void evaluateCheckpoint(const QString &checkpoint);
    void evaluateCheckpointInteractive();
    void cancelEvaluation();
    bool isEvaluating() const;

    /// Lists the images of one confusion cell below the matrix.
    void showCell(int trueClass, int predictedClass);
    void setMisclassifiedRanking(Evaluation::Ranking ranking);

    ConfusionMatrixView *matrixView() const { return m_matrix; }
    PredictionListModel *cellModel() const { return m_cellModel; }
    QListView *cellView() const { return m_cellView; }
    QLabel *cellLabel() const { return m_cellLabel; }
    PredictionListModel *misclassifiedModel() const { return m_wrongModel; }
    QListView *misclassifiedView() const { return m_wrongView; }
    QComboBox *rankingCombo() const { return m_ranking; }
    ClassMetricsModel *classModel() const { return m_classModel; }
    QTableView *classTable() const { return m_classTable; }
    QTabWidget *tabs() const { return m_tabs; }
    QLabel *summaryLabel() const { return m_summary; }
    QPushButton *evaluateButton() const { return m_evaluateButton; }

Q_SIGNALS:
    /// An evaluation is on show (from a run or a checkpoint).
    void evaluationShown();
    void evaluationFailed(const QString &message);
    void statusMessage(const QString &message);

private:
    void setBusy(bool busy);

    std::shared_ptr<const Evaluation> m_evaluation;
    SampleSource m_samples;
    QString m_samplesDescription;
    ClassifierOptions m_options;
    QString m_checkpointFolder;
    bool m_sized = false; // the splitter got its first sizes
    EvaluationJob *m_job;
    ThumbnailLoader *m_loader;

    QStackedWidget *m_pages;
    QLabel *m_emptyLabel;
    QLabel *m_summary;
    QLabel *m_source;
    QPushButton *m_evaluateButton;
    QProgressBar *m_progress;
    QPushButton *m_cancel;
    QCheckBox *m_normalize;
    WarningBanner *m_banner;
    ConfusionMatrixView *m_matrix;
    QLabel *m_cellLabel;
    PredictionListModel *m_cellModel;
    QListView *m_cellView;
    QTabWidget *m_tabs;
    ClassMetricsModel *m_classModel;
    QSortFilterProxyModel *m_classProxy;
    QTableView *m_classTable;
    QComboBox *m_ranking;
    QLabel *m_wrongLabel;
    PredictionListModel *m_wrongModel;
    QListView *m_wrongView;
    QSplitter *m_splitter;
    QSplitter *m_leftSplitter;
};

/// Top-k predictions for images or folders with a trained checkpoint: the current run's best or
/// last, or any file chosen. Prediction runs off the GUI thread; the loaded model is kept for the
/// next request.
class PredictPanel : public QWidget
{
    Q_OBJECT

public:
    explicit PredictPanel(QWidget *parent = nullptr);
    ~PredictPanel() override;

    /// The current run's checkpoints (empty: none yet).
    void setRunCheckpoints(const QString &best, const QString &last);
    /// Chooses another checkpoint file ("Other").
    void setCheckpoint(const QString &path);
    /// The checkpoint predictions use now; empty when none is available.
    QString checkpoint() const;
    void setClassifierOptions(const ClassifierOptions &options) { m_options = options; }
    /// Where the file dialogs start.
    void setStartFolder(const QString &folder) { m_startFolder = folder; }

    /// Predicts image files and folders (walked for images).
    void predict(const QStringList &paths);
    void setTopK(int k);
    int topK() const;
    bool isPredicting() const;

    QTableWidget *table() const { return m_table; }
    QComboBox *checkpointCombo() const { return m_checkpointCombo; }
    QLabel *statusLabel() const { return m_status; }

Q_SIGNALS:
    void predictionsShown();
    void predictionFailed(const QString &message);

protected:
    // Images and folders dropped here are predicted.
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dropEvent(QDropEvent *event) override;

private:
    void chooseCheckpoint();
    void updateCheckpointChoice();
    void showPredictions(const QList<ImagePrediction> &predictions, const QStringList &classes,
                         const QStringList &notes);

    PredictJob *m_job;
    ThumbnailLoader *m_loader;
    ClassifierOptions m_options;
    QString m_startFolder;
    QString m_best, m_last, m_other;
    QStringList m_paths; // the last request, predicted again when k changes
    QHash<QString, int> m_rowOfPath;

    QComboBox *m_checkpointCombo;
    QLabel *m_checkpointLabel;
    QPushButton *m_addImages;
    QPushButton *m_addFolder;
    QSpinBox *m_topk;
    QLabel *m_status;
    QProgressBar *m_progress;
    QTableWidget *m_table;
};

} // namespace ifs
