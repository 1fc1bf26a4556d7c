// PodModel
